//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B), decoding only.
//!
//! The code of Appendix B is canonical: ordered by (bit length, symbol), each code is the
//! previous one plus one, shifted left when the length grows. So the table below holds only
//! each symbol's bit length, and the codes follow from it (checked in the tests against a few
//! codes of Appendix B and against the Kraft equality of a complete prefix code).

/// Bit length of the code of each symbol 0..=255, and of EOS (256), from RFC 7541 Appendix B.
#[rustfmt::skip]
const LENGTHS: [u8; 257] = [
    // 0..=31: control characters
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    // ' ' ! " # $ % & ' ( ) * + , - . /
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    // 0 1 2 3 4 5 6 7 8 9 : ; < = > ?
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    // @ A B C D E F G H I J K L M N O
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    // P Q R S T U V W X Y Z [ \ ] ^ _
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    // ` a b c d e f g h i j k l m n o
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    // p q r s t u v w x y z { | } ~ DEL
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    // 128..=255
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    // EOS
    30,
];

/// The longest code (EOS), in bits.
const MAX_LEN: usize = 30;

/// The EOS symbol, which must never appear decoded (RFC 7541 §5.2).
const EOS: u16 = 256;

/// Why a Huffman-coded string is invalid (RFC 7541 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HuffmanError {
    /// The string decodes to the EOS symbol.
    #[error("huffman string contains EOS: RFC 7541 §5.2 treats it as a decoding error")]
    Eos,
    /// The trailing bits are longer than 7 or are not a prefix of EOS (all ones).
    #[error("huffman padding is not 0 to 7 one-bits: RFC 7541 §5.2 requires an EOS prefix")]
    Padding,
}

/// The canonical code, as tables per bit length.
struct Canonical {
    /// The first code of each length.
    first_code: [u32; MAX_LEN + 1],
    /// How many symbols have each length.
    count: [u16; MAX_LEN + 1],
    /// Index into `symbols` of the first symbol of each length.
    first_index: [u16; MAX_LEN + 1],
    /// Symbols ordered by (length, value).
    symbols: [u16; 257],
}

const CANONICAL: Canonical = canonical();

const fn canonical() -> Canonical {
    let mut count = [0u16; MAX_LEN + 1];
    let mut i = 0;
    while i < 257 {
        count[LENGTHS[i] as usize] += 1;
        i += 1;
    }

    let mut first_code = [0u32; MAX_LEN + 1];
    let mut first_index = [0u16; MAX_LEN + 1];
    let mut code = 0u32;
    let mut index = 0u16;
    let mut len = 1;
    while len <= MAX_LEN {
        code = (code + count[len - 1] as u32) << 1;
        first_code[len] = code;
        first_index[len] = index;
        index += count[len];
        len += 1;
    }

    let mut symbols = [0u16; 257];
    let mut next = first_index;
    let mut sym = 0;
    while sym < 257 {
        let len = LENGTHS[sym] as usize;
        symbols[next[len] as usize] = sym as u16;
        next[len] += 1;
        sym += 1;
    }
    Canonical {
        first_code,
        count,
        first_index,
        symbols,
    }
}

/// Decodes a Huffman-coded string into `out`.
///
/// # Errors
///
/// [`HuffmanError`] when the string holds EOS or is not padded with a short EOS prefix.
pub(crate) fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let c = &CANONICAL;
    let mut code = 0u32;
    let mut len = 0usize;
    let mut all_ones = true;
    for byte in input {
        for shift in (0..8).rev() {
            let bit = u32::from((byte >> shift) & 1);
            code = (code << 1) | bit;
            all_ones &= bit == 1;
            len += 1;
            // No code is longer than EOS, so a complete code is always found by MAX_LEN.
            let offset = code.wrapping_sub(c.first_code[len]);
            if offset < u32::from(c.count[len]) {
                let symbol = c.symbols[usize::from(c.first_index[len]) + offset as usize];
                if symbol == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(symbol as u8);
                code = 0;
                len = 0;
                all_ones = true;
            }
        }
    }
    if len > 7 || !all_ones {
        return Err(HuffmanError::Padding);
    }
    Ok(())
}

/// The code of `symbol` and its length: the inverse of [`decode`], for tests.
#[cfg(test)]
pub(crate) fn code_of(symbol: u16) -> (u32, u8) {
    let c = &CANONICAL;
    let len = LENGTHS[usize::from(symbol)];
    let start = usize::from(c.first_index[usize::from(len)]);
    let end = start + usize::from(c.count[usize::from(len)]);
    let rank = c.symbols[start..end]
        .iter()
        .position(|&s| s == symbol)
        .unwrap_or(0);
    (c.first_code[usize::from(len)] + rank as u32, len)
}

/// Huffman-encodes `input` (tests only: the rewriter never emits Huffman strings).
#[cfg(test)]
pub(crate) fn encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u64;
    let mut bits = 0u32;
    for &b in input {
        let (code, len) = code_of(u16::from(b));
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) as u8) | ((1u8 << pad) - 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_form_a_complete_prefix_code() {
        // Kraft: the sum of 2^-len over all symbols is exactly 1 for a complete code.
        let sum: u64 = LENGTHS
            .iter()
            .map(|&l| 1u64 << (MAX_LEN - l as usize))
            .sum();
        assert_eq!(sum, 1u64 << MAX_LEN);
    }

    #[test]
    fn codes_match_rfc_7541_appendix_b_samples() {
        // (symbol, code, bits) copied as facts from the Appendix B table.
        for (symbol, code, bits) in [
            (u16::from(b'0'), 0x0, 5),
            (u16::from(b' '), 0x14, 6),
            (u16::from(b'A'), 0x21, 6),
            (u16::from(b'X'), 0xfc, 8),
            (u16::from(b'z'), 0x7b, 7),
            (u16::from(b'~'), 0x1ffd, 13),
            (0, 0x1ff8, 13),
            (10, 0x3ffffffc, 30),
            (128, 0xfffe6, 20),
            (200, 0x3ffffe2, 26),
            (255, 0x3ffffee, 26),
            (EOS, 0x3fffffff, 30),
        ] {
            assert_eq!(code_of(symbol), (code, bits), "symbol {symbol}");
        }
    }

    #[test]
    fn decodes_rfc_7541_c_4_1_authority() {
        // RFC 7541 C.4.1: "www.example.com" Huffman-coded.
        let coded = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut out = Vec::new();
        decode(&coded, &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
    }

    #[test]
    fn round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        decode(&encode(&all), &mut out).unwrap();
        assert_eq!(out, all);
    }

    #[test]
    fn rejects_long_or_zero_padding_and_eos() {
        let mut out = Vec::new();
        // 'a' (00011) padded with zeros instead of ones.
        assert_eq!(decode(&[0b0001_1000], &mut out), Err(HuffmanError::Padding));
        // A whole byte of ones is a padding longer than 7 bits.
        assert_eq!(decode(&[0xff], &mut out), Err(HuffmanError::Padding));
        // EOS itself: 30 ones, then two padding ones.
        assert_eq!(decode(&[0xff; 4], &mut out), Err(HuffmanError::Eos));
    }
}
