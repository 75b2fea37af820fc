//! How records are framed in log and snapshot files: a 4-byte little-endian body length, a
//! 4-byte little-endian CRC-32 (IEEE polynomial, computed with crc32fast) of the body, then the body:
//! one MessagePack value.
//!
//! Scanning a file tells a torn tail (the end of a write the crash interrupted) from damage in
//! the middle: only the last record of the newest log file may be partial or fail its CRC, and
//! only then is it cut off.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;

/// Bytes in front of every record body.
pub const HEADER_LEN: usize = 8;

/// Longest record body: a key and a value with room to spare.
pub const MAX_BODY_LEN: usize = net::limits::MAX_FRAME_LEN;

/// Appends one framed record to `dst`.
pub fn encode<T: Serialize>(item: &T, dst: &mut Vec<u8>) -> Result<(), Error> {
    let start = dst.len();
    dst.extend_from_slice(&[0; HEADER_LEN]);
    if let Err(err) = rmp_serde::encode::write_named(dst, item) {
        dst.truncate(start);
        return Err(Error::Net(net::NetError::Encode(err.to_string())));
    }
    let body = &dst[start + HEADER_LEN..];
    let len = body.len() as u32;
    let crc = crc32fast::hash(body);
    dst[start..start + 4].copy_from_slice(&len.to_le_bytes());
    dst[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The end of a file that a crash interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// Where the partial record starts; the file is valid up to here.
    pub offset: u64,
    /// Bytes from `offset` to the end of the file.
    pub bytes: u64,
}

/// Calls `apply` with each record of `data` (read from `path`) and its offset. `tail_may_tear`
/// says whether the file's last record may be partial (true only for the newest log file).
/// Returns the torn tail, if there was one.
pub fn scan<T: DeserializeOwned>(
    path: &Path,
    data: &[u8],
    tail_may_tear: bool,
    mut apply: impl FnMut(u64, T) -> Result<(), Error>,
) -> Result<Option<TornTail>, Error> {
    let corrupt = |offset: usize, detail: String| Error::Corrupt {
        file: path.display().to_string(),
        offset: offset as u64,
        detail,
    };
    let mut offset = 0;
    while offset < data.len() {
        let rest = &data[offset..];
        let torn = TornTail { offset: offset as u64, bytes: rest.len() as u64 };
        if rest.iter().all(|b| *b == 0) && tail_may_tear {
            return Ok(Some(torn));
        }
        if rest.len() < HEADER_LEN {
            return if tail_may_tear { Ok(Some(torn)) } else { Err(corrupt(offset, "partial record header".into())) };
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let end = HEADER_LEN.checked_add(len).filter(|end| *end <= rest.len());
        let Some(end) = end.filter(|_| len <= MAX_BODY_LEN) else {
            if tail_may_tear && len <= MAX_BODY_LEN {
                return Ok(Some(torn));
            }
            return Err(corrupt(offset, format!("record length {len} runs past the end or the limit")));
        };
        let body = &rest[HEADER_LEN..end];
        if crc32fast::hash(body) != crc {
            if tail_may_tear && end == rest.len() {
                return Ok(Some(torn));
            }
            return Err(corrupt(offset, "checksum mismatch".into()));
        }
        let record: T = rmp_serde::from_slice(body).map_err(|e| corrupt(offset, format!("undecodable record: {e}")))?;
        apply(offset as u64, record)?;
        offset += end;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(records: &[u64]) -> Vec<u8> {
        let mut buf = Vec::new();
        for r in records {
            encode(r, &mut buf).unwrap();
        }
        buf
    }

    fn read(data: &[u8], tail_may_tear: bool) -> Result<(Vec<u64>, Option<TornTail>), Error> {
        let mut out = Vec::new();
        let torn = scan(Path::new("test.log"), data, tail_may_tear, |_, r: u64| {
            out.push(r);
            Ok(())
        })?;
        Ok((out, torn))
    }

    #[test]
    fn records_round_trip() {
        let data = file(&[1, 2, 300_000]);
        assert_eq!(read(&data, false).unwrap(), (vec![1, 2, 300_000], None));
    }

    #[test]
    fn a_partial_last_record_is_a_torn_tail() {
        let data = file(&[1, 2, 3]);
        let whole = data.len();
        let cut = &data[..whole - 2];
        let (records, torn) = read(cut, true).unwrap();
        assert_eq!(records, vec![1, 2]);
        let torn = torn.unwrap();
        assert_eq!(torn.offset + torn.bytes, cut.len() as u64);
        assert!(matches!(read(cut, false), Err(Error::Corrupt { .. })), "older files never tear");
    }

    #[test]
    fn a_bad_checksum_on_the_last_record_is_a_torn_tail() {
        let mut data = file(&[1, 2]);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        let (records, torn) = read(&data, true).unwrap();
        assert_eq!((records, torn.is_some()), (vec![1], true));
    }

    #[test]
    fn a_bad_record_in_the_middle_is_corruption_with_its_offset() {
        let mut data = file(&[1, 2, 3]);
        let second = file(&[1]).len();
        data[second + HEADER_LEN] ^= 0xff;
        match read(&data, true) {
            Err(Error::Corrupt { offset, file, .. }) => {
                assert_eq!((offset, file.as_str()), (second as u64, "test.log"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn trailing_zeros_are_a_torn_tail() {
        let mut data = file(&[1]);
        data.extend_from_slice(&[0; 20]);
        let (records, torn) = read(&data, true).unwrap();
        assert_eq!((records, torn.unwrap().bytes), (vec![1], 20));
    }
}
