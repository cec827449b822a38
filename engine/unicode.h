#pragma once
// UTF-8 helpers and GPT-2's byte <-> unicode map, for the tokenizers.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::unicode {

// Length of the well-formed UTF-8 sequence starting at s[i] (1..4), or 0 when the bytes
// there are not one (stray continuation byte, overlong form, surrogate, > U+10FFFF, cut off).
size_t utf8_seq_len(std::string_view s, size_t i);

std::string cpt_to_utf8(uint32_t cpt);

// GPT-2's bytes_to_unicode(): every byte maps to a printable code point so a byte-level
// vocabulary can be stored as text; printable Latin-1 bytes map to themselves, the other
// 68 bytes to U+0100.. in byte order (space 0x20 -> U+0120 'Ġ', '\n' -> U+010A 'Ċ').
const std::array<std::string, 256>& byte_to_bpe_char();  // UTF-8 of each byte's code point
// The byte a code point of that map stands for, or -1 when it is not in the map.
int bpe_cpt_to_byte(uint32_t cpt);

// Decodes the well-formed sequence at s[i] of length n = utf8_seq_len(s, i) > 0.
uint32_t utf8_decode(std::string_view s, size_t i, size_t n);

}  // namespace kiln::unicode
