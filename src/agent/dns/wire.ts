// A cheap structural check before a packet reaches the wire-format decoder. dns-packet sizes its arrays
// from the header's counts before reading a byte of them: a 12-byte header claiming 65,535 records of
// each kind costs milliseconds to reject, which an attacker can repeat thousands of times a second.
// The counts must fit in the bytes that follow (a question is at least 5 bytes, a record at least 11).

export function plausibleMessage(msg: Buffer): boolean {
  if (msg.length < 12) return false;
  const qd = msg.readUInt16BE(4);
  const rr = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  return qd * 5 + rr * 11 <= msg.length - 12;
}
