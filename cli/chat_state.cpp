#include "cli/chat_state.h"

#include <cstdlib>
#include <fstream>
#include <system_error>

#include <unistd.h>

namespace kiln::cli {

std::filesystem::path state_dir() {
    // The XDG spec says a relative XDG_STATE_HOME is invalid and must be ignored.
    const char* xdg = std::getenv("XDG_STATE_HOME");
    if (xdg && *xdg == '/') return std::filesystem::path(xdg) / "kiln";
    const char* home = std::getenv("HOME");
    if (home && *home) return std::filesystem::path(home) / ".local" / "state" / "kiln";
    return {};
}

std::filesystem::path history_path() {
    const auto dir = state_dir();
    return dir.empty() ? dir : dir / "history";
}

std::optional<std::string> last_model() {
    const auto dir = state_dir();
    if (dir.empty()) return std::nullopt;
    std::ifstream in(dir / "last_model");
    std::string path;
    if (!in || !std::getline(in, path) || path.empty()) return std::nullopt;
    return path;
}

void remember_last_model(const std::string& model_path) {
    const auto dir = state_dir();
    if (dir.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    const auto absolute = std::filesystem::absolute(model_path, ec);
    if (ec) return;
    // Write then rename, so two chats starting at once never leave half a path.
    const auto tmp = dir / ("last_model.tmp" + std::to_string(::getpid()));
    {
        std::ofstream out(tmp);
        if (!out) return;
        out << absolute.string() << '\n';
        if (!out) return;
    }
    std::filesystem::rename(tmp, dir / "last_model", ec);
    if (ec) std::filesystem::remove(tmp, ec);
}

}  // namespace kiln::cli
