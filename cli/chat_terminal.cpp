#include "cli/chat_terminal.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

namespace kiln::cli {

bool colour_enabled(FILE* stream) {
    const char* no_color = std::getenv("NO_COLOR");
    if (no_color && *no_color) return false;
    return ::isatty(::fileno(stream)) == 1;
}

Palette Palette::make(bool colour) {
    if (!colour) return {};
    return {"\033[1;32m", "\033[2m", "\033[31m", "\033[0m"};
}

namespace {

// volatile sig_atomic_t would do for one flag; atomic<bool> is lock-free here and
// also orders the stores for the generating thread.
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free);
struct sigaction g_previous {};
bool g_colour = false;  // set before the handler is installed, only read in it

extern "C" void on_sigint(int) {
    if (g_interrupted.exchange(true)) {
        // Only async-signal-safe calls here: reset colours, end the line, leave.
        static const char reset[] = "\033[0m";
        ssize_t ignored = 0;
        if (g_colour) ignored = ::write(STDOUT_FILENO, reset, sizeof reset - 1);
        ignored = ::write(STDOUT_FILENO, "\n", 1);
        (void)ignored;
        ::_exit(130);
    }
}

}  // namespace

InterruptGuard::InterruptGuard(bool colour) {
    g_colour = colour;
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // an interrupted write to the terminal just goes on
    ::sigaction(SIGINT, &sa, &g_previous);
    g_interrupted = false;
}

InterruptGuard::~InterruptGuard() { ::sigaction(SIGINT, &g_previous, nullptr); }

bool InterruptGuard::raised() { return g_interrupted.load(std::memory_order_relaxed); }
void InterruptGuard::clear() { g_interrupted = false; }

}  // namespace kiln::cli
