#include "engine/stop.h"

#include <algorithm>

namespace kiln {

namespace {

// Length of the longest suffix of `text` that is a proper prefix of `stop`:
// the part of `text` a later piece could still complete into `stop`.
std::size_t partial_stop_length(std::string_view text, std::string_view stop) {
    const std::size_t max_len = std::min(text.size(), stop.size() - 1);
    for (std::size_t len = max_len; len > 0; --len) {
        if (text.substr(text.size() - len) == stop.substr(0, len)) return len;
    }
    return 0;
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
    for (std::size_t i = 0; i < stops_.size(); ++i) {
        if (stops_[i].empty())
            throw InvalidStopStrings("stop string " + std::to_string(i) +
                                     " is empty: an empty stop string would end generation at once; "
                                     "remove it");
    }
}

StopScan StopMatcher::feed(std::string_view piece) {
    StopScan scan;
    if (stopped_) return scan;
    pending_.append(piece);

    // Only the unsent text can hold a stop string: anything that started in
    // text already sent would have been held back (see partial_stop_length).
    std::size_t first = std::string::npos;
    for (std::size_t i = 0; i < stops_.size(); ++i) {
        const std::size_t at = pending_.find(stops_[i]);
        if (at < first) {
            first = at;
            matched_index_ = i;
        }
    }
    if (first != std::string::npos) {
        scan.text = pending_.substr(0, first);
        scan.stopped = stopped_ = true;
        pending_.clear();
        return scan;
    }

    std::size_t hold = 0;
    for (const std::string& stop : stops_) hold = std::max(hold, partial_stop_length(pending_, stop));
    scan.text = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return scan;
}

std::string StopMatcher::flush() {
    std::string out;
    if (!stopped_) out.swap(pending_);
    pending_.clear();
    return out;
}

const std::string& StopMatcher::matched() const {
    static const std::string none;
    return stopped_ ? stops_[matched_index_] : none;
}

void StopMatcher::reset() {
    pending_.clear();
    stopped_ = false;
    matched_index_ = 0;
}

}  // namespace kiln
