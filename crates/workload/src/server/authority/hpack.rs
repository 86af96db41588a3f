//! Just enough HPACK (RFC 7541) for the authority rewrite: a full decoder that follows the
//! client's dynamic table, and an encoder that emits literals only.
//!
//! The encoder never adds to the server's dynamic table (it uses "literal header field without
//! indexing", §6.2.2, or "never indexed", §6.2.3), so what h2 decodes from a rewritten block
//! cannot depend on, or disturb, any table state this module would have to mirror.

use std::collections::VecDeque;

use super::huffman::{self, HuffmanError};

/// The dynamic table size h2 advertises and enforces (SETTINGS_HEADER_TABLE_SIZE default,
/// RFC 9113 §6.5.2); tonic does not change it. A larger size update is a decoding error.
pub(crate) const MAX_TABLE_SIZE: usize = 4096;

/// The static table (RFC 7541 Appendix A), index 1 first.
#[rustfmt::skip]
const STATIC: [(&str, &str); 61] = [
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
    ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
    ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
    ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
    ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
    ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""),
    ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""),
    ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
    ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
];

/// One decoded header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: Vec<u8>,
    pub(crate) value: Vec<u8>,
    /// Sent as "never indexed" (§6.2.3); kept so intermediaries downstream still see it.
    pub(crate) sensitive: bool,
}

/// Why a header block does not decode (each a COMPRESSION_ERROR for h2, RFC 9113 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// An integer or string runs past the end of the block.
    #[error("header block ends inside a field: RFC 7541 §5 needs the whole representation")]
    Truncated,
    /// An integer needs more than 4 continuation octets (§5.1 allows a limit).
    #[error("hpack integer longer than 5 octets: larger than any table or string allowed here")]
    IntegerTooLong,
    /// An index is 0 or past the end of the static and dynamic tables.
    #[error("hpack index {0} is 0 or past the tables: RFC 7541 §2.3.3 makes it an error")]
    BadIndex(usize),
    /// A size update above [`MAX_TABLE_SIZE`], or after the first field (§4.2).
    #[error("dynamic table size update to {0}: only up to 4096 at the block start (§4.2, §6.3)")]
    BadSizeUpdate(usize),
    /// The decoded list exceeds the caller's bound.
    #[error("decoded header list exceeds {0} bytes")]
    TooLarge(usize),
    /// A Huffman string is malformed.
    #[error(transparent)]
    Huffman(#[from] HuffmanError),
}

/// The decoder of one connection's header blocks (one per direction, RFC 7541 §2.2).
pub(crate) struct Decoder {
    /// Newest first, as indexed (§2.3.3).
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// Sum of entry sizes (§4.1: name + value + 32).
    size: usize,
    max_size: usize,
}

impl Decoder {
    pub(crate) fn new() -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
            max_size: MAX_TABLE_SIZE,
        }
    }

    /// Decodes one complete header block, updating the dynamic table.
    ///
    /// `max_list` bounds the decoded list (entry sizes as in RFC 9113 §6.5.2), since a small
    /// block of indexed references can expand a thousandfold.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] for a block h2 would refuse; the table is then unusable.
    pub(crate) fn decode(
        &mut self,
        block: &[u8],
        max_list: usize,
    ) -> Result<Vec<Field>, DecodeError> {
        let mut fields = Vec::new();
        let mut list_size = 0usize;
        let mut pos = 0;
        while pos < block.len() {
            let first = block[pos];
            let field = if first & 0x80 != 0 {
                let index = integer(block, &mut pos, 7)?;
                let (name, value) = self.entry(index)?;
                Field {
                    name: name.to_vec(),
                    value: value.to_vec(),
                    sensitive: false,
                }
            } else if first & 0x40 != 0 {
                let field = self.literal(block, &mut pos, 6, false)?;
                self.insert(field.name.clone(), field.value.clone());
                field
            } else if first & 0x20 != 0 {
                let size = integer(block, &mut pos, 5)?;
                if size > MAX_TABLE_SIZE || !fields.is_empty() {
                    return Err(DecodeError::BadSizeUpdate(size));
                }
                self.max_size = size;
                self.evict(0);
                continue;
            } else {
                self.literal(block, &mut pos, 4, first & 0x10 != 0)?
            };
            list_size += field.name.len() + field.value.len() + 32;
            if list_size > max_list {
                return Err(DecodeError::TooLarge(max_list));
            }
            fields.push(field);
        }
        Ok(fields)
    }

    /// Index `index` of the combined static and dynamic tables (§2.3.3).
    fn entry(&self, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
        if let Some(&(name, value)) = index.checked_sub(1).and_then(|i| STATIC.get(i)) {
            return Ok((name.as_bytes(), value.as_bytes()));
        }
        index
            .checked_sub(STATIC.len() + 1)
            .and_then(|i| self.table.get(i))
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .ok_or(DecodeError::BadIndex(index))
    }

    /// A literal field whose name index has a `prefix`-bit prefix (§6.2).
    fn literal(
        &self,
        block: &[u8],
        pos: &mut usize,
        prefix: u8,
        sensitive: bool,
    ) -> Result<Field, DecodeError> {
        let index = integer(block, pos, prefix)?;
        let name = if index == 0 {
            string(block, pos)?
        } else {
            self.entry(index)?.0.to_vec()
        };
        let value = string(block, pos)?;
        Ok(Field {
            name,
            value,
            sensitive,
        })
    }

    /// Adds an entry, evicting the oldest ones to fit (§4.4); an entry larger than the table
    /// empties it and is not added.
    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = name.len() + value.len() + 32;
        self.evict(size);
        if size <= self.max_size {
            self.size += size;
            self.table.push_front((name, value));
        }
    }

    /// Evicts until `room` more bytes fit under the maximum size (§4.3, §4.4).
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => break,
            }
        }
    }
}

/// Appends `fields` to `out` as literals without indexing (never indexed where the client
/// said so), names by static-table index where one matches, strings without Huffman coding.
pub(crate) fn encode(fields: &[Field], out: &mut Vec<u8>) {
    for field in fields {
        let flag = if field.sensitive { 0x10 } else { 0x00 };
        match STATIC.iter().position(|(n, _)| n.as_bytes() == field.name) {
            Some(i) => put_integer(out, flag, 4, i + 1),
            None => {
                out.push(flag);
                put_string(out, &field.name);
            }
        }
        put_string(out, &field.value);
    }
}

/// Reads an integer with an `n`-bit prefix (§5.1) at `*pos`, advancing it.
fn integer(block: &[u8], pos: &mut usize, n: u8) -> Result<usize, DecodeError> {
    let mask = (1u16 << n) - 1;
    let first = *block.get(*pos).ok_or(DecodeError::Truncated)?;
    *pos += 1;
    let mut value = usize::from(u16::from(first) & mask);
    if value < usize::from(mask) {
        return Ok(value);
    }
    for shift in (0..28).step_by(7) {
        let byte = *block.get(*pos).ok_or(DecodeError::Truncated)?;
        *pos += 1;
        value += usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::IntegerTooLong)
}

/// Reads a string literal (§5.2) at `*pos`, advancing it.
fn string(block: &[u8], pos: &mut usize) -> Result<Vec<u8>, DecodeError> {
    let huffman = block.get(*pos).is_some_and(|b| b & 0x80 != 0);
    let len = integer(block, pos, 7)?;
    let end = pos.checked_add(len).ok_or(DecodeError::Truncated)?;
    let raw = block.get(*pos..end).ok_or(DecodeError::Truncated)?;
    *pos = end;
    if huffman {
        let mut out = Vec::with_capacity(len * 8 / 5);
        huffman::decode(raw, &mut out)?;
        Ok(out)
    } else {
        Ok(raw.to_vec())
    }
}

/// Writes `value` with an `n`-bit prefix under the bits `flags` (§5.1).
fn put_integer(out: &mut Vec<u8>, flags: u8, n: u8, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Writes a raw (not Huffman-coded) string literal (§5.2).
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_integer(out, 0x00, 7, s.len());
    out.extend_from_slice(s);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn decodes_rfc_7541_c_4_requests_with_huffman_and_the_dynamic_table() {
        // RFC 7541 C.4.1 to C.4.3: three requests on one connection.
        let mut d = Decoder::new();
        let first = [
            0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
            0x90, 0xf4, 0xff,
        ];
        let fields = d.decode(&first, usize::MAX).unwrap();
        assert_eq!(fields[3].name, b":authority");
        assert_eq!(fields[3].value, b"www.example.com");
        assert_eq!(d.size, 57);

        let second = [
            0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf,
        ];
        let fields = d.decode(&second, usize::MAX).unwrap();
        assert_eq!(
            fields[3].value, b"www.example.com",
            "index 62 from the table"
        );
        assert_eq!(
            (&fields[4].name[..], &fields[4].value[..]),
            (&b"cache-control"[..], &b"no-cache"[..])
        );
        assert_eq!(d.size, 110);
    }

    #[test]
    fn encoding_round_trips_through_a_fresh_decoder() {
        let fields = vec![
            Field {
                name: b":authority".to_vec(),
                value: b"localhost".to_vec(),
                sensitive: false,
            },
            Field {
                name: b"x-long".to_vec(),
                value: vec![b'v'; 300],
                sensitive: true,
            },
        ];
        let mut block = Vec::new();
        encode(&fields, &mut block);
        let mut d = Decoder::new();
        assert_eq!(d.decode(&block, usize::MAX).unwrap(), fields);
        assert!(d.table.is_empty(), "literals without indexing add nothing");
    }

    #[test]
    fn rejects_malformed_blocks() {
        let cases: [(&[u8], DecodeError); 6] = [
            (&[0x80], DecodeError::BadIndex(0)),
            (&[0xbe], DecodeError::BadIndex(62)),
            (&[0x41, 0x05, b'a'], DecodeError::Truncated),
            (&[0x3f, 0xe2, 0x1f], DecodeError::BadSizeUpdate(4097)),
            (&[0x82, 0x20], DecodeError::BadSizeUpdate(0)),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                DecodeError::IntegerTooLong,
            ),
        ];
        for (block, want) in cases {
            assert_eq!(
                Decoder::new().decode(block, usize::MAX),
                Err(want),
                "{block:x?}"
            );
        }
    }
}
