#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/utf8.h"
#include "test_paths.h"

using kiln::is_valid_utf8;
using kiln::Utf8Buffer;

namespace {

const std::string fffd = "\xEF\xBF\xBD";

// Feeds `pieces` through one buffer and returns everything it emitted, checking
// that every emission on the way is valid UTF-8.
std::string stream(const std::vector<std::string>& pieces) {
    Utf8Buffer buf;
    std::string out;
    for (const auto& p : pieces) {
        std::string got = buf.feed(p);
        CHECK(is_valid_utf8(got));
        out += got;
    }
    out += buf.flush();
    return out;
}

}  // namespace

TEST_CASE("utf8: is_valid_utf8 accepts well-formed text at every length and boundary") {
    CHECK(is_valid_utf8(""));
    CHECK(is_valid_utf8("plain ASCII\n"));
    CHECK(is_valid_utf8(std::string("\0", 1)));                 // U+0000 is a character
    CHECK(is_valid_utf8("\x7F"));                                // U+007F
    CHECK(is_valid_utf8("\xC2\x80"));                            // U+0080, smallest 2-byte
    CHECK(is_valid_utf8("\xDF\xBF"));                            // U+07FF
    CHECK(is_valid_utf8("\xE0\xA0\x80"));                        // U+0800, smallest 3-byte
    CHECK(is_valid_utf8("\xED\x9F\xBF"));                        // U+D7FF, just below surrogates
    CHECK(is_valid_utf8("\xEE\x80\x80"));                        // U+E000, just above surrogates
    CHECK(is_valid_utf8("\xEF\xBF\xBF"));                        // U+FFFF
    CHECK(is_valid_utf8("\xF0\x90\x80\x80"));                    // U+10000, smallest 4-byte
    CHECK(is_valid_utf8("\xF4\x8F\xBF\xBF"));                    // U+10FFFF, the largest
    CHECK(is_valid_utf8("\xE2\x82\xAC 5, \xF0\x9F\xA6\x99, \xE6\x88\x91"));  // € 🦙 我
}

TEST_CASE("utf8: is_valid_utf8 rejects overlongs, surrogates, out-of-range and broken sequences") {
    CHECK_FALSE(is_valid_utf8("\x80"));                  // lone continuation
    CHECK_FALSE(is_valid_utf8("\xBF"));
    CHECK_FALSE(is_valid_utf8("\xC0\x80"));              // overlong U+0000
    CHECK_FALSE(is_valid_utf8("\xC1\xBF"));              // overlong U+007F
    CHECK_FALSE(is_valid_utf8("\xE0\x80\x80"));          // overlong 3-byte
    CHECK_FALSE(is_valid_utf8("\xE0\x9F\xBF"));          // overlong U+07FF
    CHECK_FALSE(is_valid_utf8("\xF0\x80\x80\x80"));      // overlong 4-byte
    CHECK_FALSE(is_valid_utf8("\xF0\x8F\xBF\xBF"));      // overlong U+FFFF
    CHECK_FALSE(is_valid_utf8("\xED\xA0\x80"));          // U+D800, a surrogate
    CHECK_FALSE(is_valid_utf8("\xED\xBF\xBF"));          // U+DFFF
    CHECK_FALSE(is_valid_utf8("\xED\xA0\xBD\xED\xB8\x80"));  // CESU-8 surrogate pair
    CHECK_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));      // U+110000
    CHECK_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
    CHECK_FALSE(is_valid_utf8("\xFE"));
    CHECK_FALSE(is_valid_utf8("\xFF"));
    CHECK_FALSE(is_valid_utf8("\xE2\x82"));              // truncated at the end
    CHECK_FALSE(is_valid_utf8("\xF0\x9F\xA6"));
    CHECK_FALSE(is_valid_utf8("a\xE2\x82" "b"));         // truncated in the middle
    CHECK_FALSE(is_valid_utf8("\xC2\xC2\x80"));          // lead where a continuation belongs
    CHECK_FALSE(is_valid_utf8("ok \xE2\x82\xAC then \xC3\x28"));
}

TEST_CASE("utf8: buffer re-assembles a multi-byte string split at every position") {
    const std::string text = "a\xE2\x82\xAC" "b\xF0\x9F\xA6\x99\xC3\xA9\xE6\x88\x91z";  // a€b🦙é我z
    REQUIRE(is_valid_utf8(text));
    for (std::size_t i = 0; i <= text.size(); ++i) {
        for (std::size_t j = i; j <= text.size(); ++j) {
            CAPTURE(i);
            CAPTURE(j);
            CHECK(stream({text.substr(0, i), text.substr(i, j - i), text.substr(j)}) == text);
        }
    }
    // One byte per token, as byte-fallback tokens deliver it.
    std::vector<std::string> bytes;
    for (char c : text) bytes.emplace_back(1, c);
    CHECK(stream(bytes) == text);
}

TEST_CASE("utf8: buffer emits a character as soon as its last byte arrives") {
    Utf8Buffer buf;
    CHECK(buf.feed("\xE2") == "");
    CHECK(buf.pending() == 1);
    CHECK(buf.feed("\x82") == "");
    CHECK(buf.feed("\xAC" "x") == "\xE2\x82\xAC" "x");
    CHECK(buf.pending() == 0);
    CHECK(buf.feed("y\xF0\x9F") == "y");
    CHECK(buf.pending() == 2);
    CHECK(buf.feed("\xA6\x99") == "\xF0\x9F\xA6\x99");
    CHECK(buf.flush() == "");
}

TEST_CASE("utf8: buffer replaces ill-formed bytes and flushes an unfinished character as U+FFFD") {
    CHECK(stream({"\xE2\x82"}) == fffd);                      // unfinished at the end: one U+FFFD
    CHECK(stream({"ab\xF0\x9F", "\xA6"}) == "ab" + fffd);
    CHECK(stream({"\x80" "a"}) == fffd + "a");                // lone continuation
    CHECK(stream({"\xE2\x82", "A"}) == fffd + "A");           // interrupted: maximal subpart -> one U+FFFD
    CHECK(stream({"\xE2", "\xF0\x9F\xA6\x99"}) == fffd + "\xF0\x9F\xA6\x99");
    CHECK(stream({"\xED\xA0\x80"}) == fffd + fffd + fffd);    // surrogate: ED then two stray continuations
    CHECK(stream({"\xC0\xAF"}) == fffd + fffd);               // overlong '/'
    CHECK(stream({"\xFF\xFE"}) == fffd + fffd);
    // Reset drops an unfinished character.
    Utf8Buffer buf;
    CHECK(buf.feed("\xE2\x82") == "");
    buf.reset();
    CHECK(buf.feed("ok") == "ok");
    CHECK(buf.flush() == "");
}

TEST_CASE("utf8: llama.cpp tokenizer test inputs survive random splits unchanged") {
    // Real multilingual text (Khmer, CJK, Cyrillic, emoji) from the shared test vectors.
    const auto path = kiln::test::model_path("tokenizer-tests/ggml-vocab-qwen2.gguf.inp");
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in, "cannot open " << path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    REQUIRE(text.size() > 1000);
    REQUIRE(is_valid_utf8(text));

    std::mt19937_64 rng(7);
    for (int round = 0; round < 20; ++round) {
        std::vector<std::string> pieces;
        std::size_t at = 0;
        while (at < text.size()) {
            const std::size_t len = 1 + rng() % 5;
            pieces.push_back(text.substr(at, len));
            at += len;
        }
        CHECK(stream(pieces) == text);
    }
    // Truncating inside the final multi-byte characters must be caught.
    std::size_t multibyte = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if ((static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) {
            ++multibyte;
            CHECK_FALSE(is_valid_utf8(std::string_view(text).substr(0, i)));
        }
    }
    CHECK(multibyte > 100);
}
