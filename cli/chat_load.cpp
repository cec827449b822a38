#include "cli/chat_load.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

namespace kiln::cli {
namespace {

void draw_bar(const std::string& name, uint64_t done, uint64_t total) {
    constexpr int kWidth = 30;
    const double f = total ? double(done) / double(total) : 1.0;
    const int filled = int(f * kWidth + 0.5);
    std::string bar(size_t(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\rloading %s [%s] %3d%% %.1f/%.1f MB", name.c_str(), bar.c_str(), int(f * 100 + 0.5),
                 double(done) / 1e6, double(total) / 1e6);
    std::fflush(stderr);
}

}  // namespace

LoadedModel load_with_progress(const ModelOptions& options, bool show) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string name = std::filesystem::path(options.model_path).filename().string();
    if (show) {
        std::fprintf(stderr, "loading %s ...", name.c_str());
        std::fflush(stderr);
    }
    LoadedModel m;
    try {
        m = load_for_cli(options);
    } catch (...) {
        if (show) std::fputc('\n', stderr);  // the error line goes below, not after "..."
        throw;
    }

    const auto& tensors = m.model->gguf().tensors();
    uint64_t total = 0, done = 0;
    for (const auto& t : tensors) total += t.n_bytes;
    const long page_size = ::sysconf(_SC_PAGESIZE);
    const uint64_t page = page_size > 0 ? uint64_t(page_size) : 4096;
    const uint64_t redraw_every = total / 100 + 1;
    uint64_t next_redraw = 0;
    volatile uint8_t sink = 0;
    for (const auto& t : tensors) {
        for (uint64_t off = 0; off < t.n_bytes; off += page) sink = sink + t.data[off];
        done += t.n_bytes;
        if (show && done >= next_redraw) {
            draw_bar(name, done, total);
            next_redraw = done + redraw_every;
        }
    }
    if (show) {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        char line[512];
        std::snprintf(line, sizeof line, "loaded %s: %.1f MB, %zu tensors, context %lld tokens, in %.2f s", name.c_str(),
                      double(total) / 1e6, tensors.size(), (long long)m.context->n_ctx(), s);
        // Spaces cover what is left of the longer bar line (no escape codes: NO_COLOR users get none).
        const size_t bar_width = name.size() + 60;
        std::string padded = line;
        if (padded.size() < bar_width) padded.resize(bar_width, ' ');
        std::fprintf(stderr, "\r%s\n", padded.c_str());
    }
    return m;
}

}  // namespace kiln::cli
