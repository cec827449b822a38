#pragma once
// The terminal side of `kiln chat`: colours (only on a terminal, never with
// NO_COLOR) and Ctrl-C while the model writes.
#include <cstdio>

namespace kiln::cli {

// True when `stream` is a terminal and NO_COLOR is unset or empty (https://no-color.org).
bool colour_enabled(FILE* stream);

// ANSI escape sequences, or "" for every field when colours are off.
struct Palette {
    const char* prompt = "";
    const char* notice = "";
    const char* error = "";
    const char* reset = "";
    static Palette make(bool colour);
};

// While alive, SIGINT only raises a flag that the token loop polls, so Ctrl-C stops
// an answer instead of the process. A second Ctrl-C before the first was noticed
// (a long prompt still being evaluated) exits at once: the terminal is in its
// normal mode then, so nothing is left corrupted.
class InterruptGuard {
public:
    // `colour`: whether the terminal may be mid-colour when a second Ctrl-C exits.
    explicit InterruptGuard(bool colour);
    ~InterruptGuard();
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;

    static bool raised();
    static void clear();
};

}  // namespace kiln::cli
