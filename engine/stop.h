#pragma once
// Stop strings over streamed text. A stop string may arrive split over
// several tokens ("<|e" + "nd|>"), so text that could be the start of one is
// held back until the next piece decides: a stop string is never shown, and
// the text before it is never lost.
//
// End-of-generation tokens and max_tokens are left to the caller: they are
// decided per token id (the tokenizer knows which ids end generation), before
// any text exists. When one of them ends generation, call flush() to get the
// held-back text, which then belongs to the output.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

class InvalidStopStrings : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

struct StopScan {
    std::string text;   // safe to emit now (everything before a stop string, when one hit)
    bool stopped = false;
};

class StopMatcher {
public:
    // `stops` may be empty (then every piece passes straight through). An
    // empty stop string would match everywhere and is rejected with
    // InvalidStopStrings; duplicates are harmless.
    explicit StopMatcher(std::vector<std::string> stops);

    // Appends a piece of generated text. Feed complete UTF-8 characters (from
    // Utf8Buffer) and the emitted text is complete characters too. After a
    // stop string hit, further pieces are ignored and return nothing.
    StopScan feed(std::string_view piece);

    // End of generation without a stop string: the held-back text.
    std::string flush();

    bool stopped() const { return stopped_; }
    // The stop string that ended generation (the earliest in the text; among
    // those starting at the same byte, the first given); empty if none.
    const std::string& matched() const;
    // Bytes currently held back: never more than max(len(stop)) - 1.
    std::size_t held_back() const { return pending_.size(); }
    const std::vector<std::string>& stops() const { return stops_; }

    void reset();

private:
    std::vector<std::string> stops_;
    std::string pending_;  // text received but not yet emitted
    bool stopped_ = false;
    std::size_t matched_index_ = 0;
};

}  // namespace kiln
