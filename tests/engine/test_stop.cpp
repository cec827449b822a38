#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/stop.h"

using kiln::StopMatcher;

namespace {

struct Run {
    std::string emitted;
    bool stopped = false;
    std::string matched;
    std::size_t max_held = 0;
};

// Streams `pieces` through a matcher the way the generation loop does:
// emit what feed() returns, stop on a hit, flush at the end otherwise.
Run stream(const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
    StopMatcher m(stops);
    Run r;
    for (const auto& p : pieces) {
        auto scan = m.feed(p);
        r.emitted += scan.text;
        r.max_held = std::max(r.max_held, m.held_back());
        if (scan.stopped) {
            r.stopped = true;
            r.matched = m.matched();
            return r;
        }
    }
    r.emitted += m.flush();
    return r;
}

}  // namespace

TEST_CASE("stop: a stop string split at every position is never emitted, the text before it always is") {
    const std::string text = "Hello there<|end|> and more";
    const std::vector<std::string> stops = {"<|end|>"};
    for (std::size_t i = 0; i <= text.size(); ++i) {
        for (std::size_t j = i; j <= text.size(); ++j) {
            CAPTURE(i);
            CAPTURE(j);
            Run r = stream(stops, {text.substr(0, i), text.substr(i, j - i), text.substr(j)});
            CHECK(r.stopped);
            CHECK(r.emitted == "Hello there");
            CHECK(r.matched == "<|end|>");
            CHECK(r.max_held <= std::string("<|end|>").size() - 1);
        }
    }
    // One character per token.
    std::vector<std::string> chars;
    for (char c : text) chars.emplace_back(1, c);
    Run r = stream(stops, chars);
    CHECK(r.stopped);
    CHECK(r.emitted == "Hello there");
}

TEST_CASE("stop: without a stop string everything comes out, partial matches included") {
    const std::string text = "a <|en b <|end c <| d";
    for (std::size_t i = 0; i <= text.size(); ++i) {
        CAPTURE(i);
        Run r = stream({"<|end|>", "STOP"}, {text.substr(0, i), text.substr(i)});
        CHECK_FALSE(r.stopped);
        CHECK(r.emitted == text);
        CHECK(r.matched.empty());
    }
    CHECK(stream({}, {"any", "thing"}).emitted == "anything");
}

TEST_CASE("stop: text that cannot start a stop string is emitted at once") {
    StopMatcher m({"###"});
    auto s = m.feed("hello");
    CHECK(s.text == "hello");
    CHECK_FALSE(s.stopped);
    s = m.feed(" world#");
    CHECK(s.text == " world");  // the '#' might begin "###"
    CHECK(m.held_back() == 1);
    s = m.feed("#x");
    CHECK(s.text == "##x");     // "##x" cannot become "###"
    CHECK(m.held_back() == 0);
}

TEST_CASE("stop: with several stop strings the earliest in the text wins") {
    const std::string text = "one two\n\nUser: three";
    const std::vector<std::string> stops = {"User:", "\n\n", "three"};
    for (std::size_t i = 0; i <= text.size(); ++i) {
        CAPTURE(i);
        Run r = stream(stops, {text.substr(0, i), text.substr(i)});
        CHECK(r.stopped);
        CHECK(r.emitted == "one two");
        CHECK(r.matched == "\n\n");
    }
    // Two stops starting at the same byte: the text before is the same; the first listed is named.
    Run r = stream({"ab", "abc"}, {"xxab", "c"});
    CHECK(r.stopped);
    CHECK(r.emitted == "xx");
    CHECK(r.matched == "ab");
    // Overlapping stop strings: the one that starts first wins, though the other ends first.
    r = stream({"bc", "abcd"}, {"zab", "cd"});
    CHECK(r.emitted == "z");
    CHECK(r.matched == "abcd");
}

TEST_CASE("stop: a stop string inside a single piece, and pieces after a hit are ignored") {
    StopMatcher m({"</s>"});
    auto s = m.feed("done.</s>trailing");
    CHECK(s.stopped);
    CHECK(s.text == "done.");
    CHECK(m.stopped());
    s = m.feed("more");
    CHECK(s.text.empty());
    CHECK(m.flush().empty());
    m.reset();
    CHECK_FALSE(m.stopped());
    CHECK(m.feed("again").text == "again");
}

TEST_CASE("stop: multi-byte stop strings hold back whole characters") {
    // "。" is E3 80 82; a piece ending in E3 80 must be held, not emitted.
    Run r = stream({"\xE3\x80\x82"}, {"\xE6\x88\x91\xE3", "\x80", "\x82" "after"});
    CHECK(r.stopped);
    CHECK(r.emitted == "\xE6\x88\x91");
}

TEST_CASE("stop: an empty stop string is rejected") {
    CHECK_THROWS_AS(StopMatcher({"ok", ""}), kiln::InvalidStopStrings);
    CHECK_THROWS_WITH_AS(StopMatcher({""}), doctest::Contains("empty"), kiln::InvalidStopStrings);
}
