//! A minimal reader for classic pcap files (what `tcpdump -w` writes), so tests can assert
//! on captured frames without another dependency. pcapng is not supported: tcpdump writes
//! classic pcap unless asked otherwise.
use std::path::Path;
use std::time::Duration;

use crate::LabError;

/// Link type of Ethernet captures (`LINKTYPE_ETHERNET`).
pub const LINKTYPE_ETHERNET: u32 = 1;

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

/// A whole capture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcap {
    /// `LINKTYPE_*` of every packet (1 = Ethernet).
    pub linktype: u32,
    pub packets: Vec<Packet>,
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Capture time since the Unix epoch.
    pub timestamp: Duration,
    /// Length on the wire; `data` is shorter when the snap length cut it.
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// Reads a pcap file.
pub fn read(path: &Path) -> Result<Pcap, LabError> {
    let bytes = std::fs::read(path).map_err(|e| LabError::io("read pcap", path, e))?;
    parse(&bytes).map_err(|what| LabError::Parse {
        what: format!("pcap file {} ({what})", path.display()),
        text: format!("{} bytes", bytes.len()),
    })
}

/// Parses pcap bytes (either byte order, microsecond or nanosecond timestamps).
pub fn parse(bytes: &[u8]) -> Result<Pcap, String> {
    let header = bytes
        .get(..FILE_HEADER_LEN)
        .ok_or("shorter than the file header")?;
    let magic_le = u32::from_le_bytes(header[..4].try_into().unwrap());
    let magic_be = u32::from_be_bytes(header[..4].try_into().unwrap());
    let (big_endian, nanos) = match (magic_le, magic_be) {
        (MAGIC_MICROS, _) => (false, false),
        (MAGIC_NANOS, _) => (false, true),
        (_, MAGIC_MICROS) => (true, false),
        (_, MAGIC_NANOS) => (true, true),
        _ => return Err(format!("bad magic {magic_le:#010x}")),
    };
    let u32_at = |b: &[u8], at: usize| {
        let raw: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        }
    };
    let linktype = u32_at(header, 20);

    let mut packets = Vec::new();
    let mut rest = &bytes[FILE_HEADER_LEN..];
    while !rest.is_empty() {
        let record = rest
            .get(..RECORD_HEADER_LEN)
            .ok_or(format!("truncated header of record {}", packets.len()))?;
        let (secs, frac) = (u32_at(record, 0), u32_at(record, 4));
        let (incl_len, orig_len) = (u32_at(record, 8) as usize, u32_at(record, 12));
        let data = rest
            .get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + incl_len)
            .ok_or(format!("truncated data of record {}", packets.len()))?;
        let frac = if nanos {
            Duration::from_nanos(frac.into())
        } else {
            Duration::from_micros(frac.into())
        };
        packets.push(Packet {
            timestamp: Duration::from_secs(secs.into()) + frac,
            orig_len,
            data: data.to_vec(),
        });
        rest = &rest[RECORD_HEADER_LEN + incl_len..];
    }
    Ok(Pcap { linktype, packets })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a file as libpcap writes it, in either byte order.
    fn file(big_endian: bool, magic: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend(w32(magic));
        out.extend(w16(2));
        out.extend(w16(4));
        out.extend(w32(0)); // thiszone
        out.extend(w32(0)); // sigfigs
        out.extend(w32(262_144)); // snaplen
        out.extend(w32(LINKTYPE_ETHERNET));
        for (secs, frac, data) in records {
            out.extend(w32(*secs));
            out.extend(w32(*frac));
            out.extend(w32(data.len() as u32));
            out.extend(w32(data.len() as u32 + 4));
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn reads_both_byte_orders_and_resolutions() {
        for big_endian in [false, true] {
            for (magic, frac) in [
                (MAGIC_MICROS, Duration::from_micros(7)),
                (MAGIC_NANOS, Duration::from_nanos(7)),
            ] {
                let bytes = file(big_endian, magic, &[(100, 7, b"abc"), (101, 0, b"")]);
                let pcap = parse(&bytes).unwrap();
                assert_eq!(pcap.linktype, LINKTYPE_ETHERNET);
                assert_eq!(pcap.packets.len(), 2);
                assert_eq!(pcap.packets[0].data, b"abc");
                assert_eq!(pcap.packets[0].orig_len, 7);
                assert_eq!(pcap.packets[0].timestamp, Duration::from_secs(100) + frac);
                assert!(pcap.packets[1].data.is_empty());
            }
        }
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(parse(b"short").is_err());
        assert!(parse(&[0u8; 24]).unwrap_err().contains("magic"));
        let bytes = file(false, MAGIC_MICROS, &[(1, 2, b"abcdef")]);
        assert!(
            parse(&bytes[..bytes.len() - 1])
                .unwrap_err()
                .contains("truncated data")
        );
        assert!(
            parse(&bytes[..30])
                .unwrap_err()
                .contains("truncated header")
        );
        assert!(parse(&bytes[..24]).unwrap().packets.is_empty());
    }
}
