#pragma once
// UTF-8 at the edges of generation: tokens carry bytes, not characters (SPM
// byte-fallback tokens such as <0xE2><0x82><0xAC> spell one '€' over three
// tokens; BPE tokens split characters too), so streamed text must be
// re-assembled into whole characters before anyone sees it.
#include <cstddef>
#include <string>
#include <string_view>

namespace kiln {

// Strict UTF-8 as defined by Unicode (Table 3-7): no overlong forms, no
// surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequences.
bool is_valid_utf8(std::string_view text);

// The replacement character U+FFFD, written wherever bytes do not decode.
inline constexpr std::string_view utf8_replacement = "\xEF\xBF\xBD";

// Streaming re-assembly of token bytes into complete characters.
// The output of feed() and flush() is always valid UTF-8: an ill-formed
// sequence becomes one U+FFFD per maximal subpart (Unicode's recommended
// practice, as in WHATWG and ICU), and a sequence still incomplete at
// flush() becomes one U+FFFD.
class Utf8Buffer {
public:
    // Appends `bytes` and returns every complete character now available;
    // at most 3 bytes of an unfinished character stay buffered.
    std::string feed(std::string_view bytes);
    // Same, appending to `out` instead of returning a new string.
    void feed(std::string_view bytes, std::string& out);

    // End of stream: returns what is buffered (U+FFFD for an unfinished character).
    std::string flush();

    // Bytes held back, waiting for the rest of a character (0..3).
    std::size_t pending() const { return n_pending_; }
    void reset() { n_pending_ = 0; }

private:
    char pending_[4] = {};
    std::size_t n_pending_ = 0;
};

}  // namespace kiln
