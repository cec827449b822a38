#pragma once
#include <stdexcept>

namespace kiln {

// Not enough room in the cache (or the context) for what was asked.
class ContextOverflowError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace kiln
