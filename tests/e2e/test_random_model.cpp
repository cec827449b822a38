// `kiln random-model` as a user runs it: a tiny file that `kiln info` reads,
// and one-line errors with exit code 1 for what a user can get wrong.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "run_process.h"
#include "test_paths.h"

using kiln::test::run_kiln_process;
using kiln::test::shell_quote;

namespace {

std::string vocab() { return shell_quote(kiln::test::model_path("kiln-test-15m-q8_0.gguf")); }

std::string out_path(const char* name) {
    return (std::filesystem::temp_directory_path() / ("kiln_e2e_" + std::to_string(::getpid()) + "_" + name)).string();
}

constexpr const char* kTiny = " --n-layer 2 --n-embd 256 --n-ff 512 --n-head 4";

}  // namespace

TEST_CASE("e2e random-model: writes a tiny model that kiln info describes, with progress and size on stderr") {
    const std::string out = out_path("tiny.gguf");
    const auto r = run_kiln_process("random-model --vocab " + vocab() + " --type q4_k_m -o " + shell_quote(out) + kTiny);
    CAPTURE(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.empty());
    CHECK(r.err.find("100%") != std::string::npos);
    CHECK(r.err.find("wrote " + out + ": " + std::to_string(std::filesystem::file_size(out)) + " bytes") !=
          std::string::npos);
    const auto info = run_kiln_process("info " + shell_quote(out));
    CHECK(info.exit_code == 0);
    for (const char* s : {"random weights", "layers           2", "q4_K", "q6_K", "32000 tokens"}) {
        CAPTURE(s);
        CHECK(info.out.find(s) != std::string::npos);
    }
    std::filesystem::remove(out);
}

TEST_CASE("e2e random-model: missing or bad options fail with a clear message and exit code 1") {
    const std::string out = out_path("bad.gguf");
    struct Case {
        std::string args, message;
    };
    const Case cases[] = {
        {"--type q4_0 -o " + shell_quote(out), "--vocab FILE is required"},
        {"--vocab " + vocab() + " -o " + shell_quote(out), "--type is required"},
        {"--vocab " + vocab() + " --type q4_0", "-o FILE is required"},
        {"--vocab " + vocab() + " --type q3_k -o " + shell_quote(out), "unknown quant mix 'q3_k' (expected f16, q4_0"},
        {"--vocab " + vocab() + " --type q4_k -o " + shell_quote(out) + " --n-layer 2 --n-embd 320 --n-head 5",
         "n_embd = 320 is not a multiple of 256"},
        {"--vocab /nonexistent.gguf --type q4_0 -o " + shell_quote(out), "/nonexistent.gguf"},
        {"--vocab " + vocab() + " --type q4_0 -o /nonexistent/dir/x.gguf" + kTiny, "cannot create"},
        {"--vocab " + vocab() + " --type q4_0 -o " + shell_quote(out) + " --n-layer 0", "--n-layer: 0 is out of range"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.args);
        const auto r = run_kiln_process("random-model " + c.args);
        CHECK(r.exit_code == 1);
        // The error is one line, the last (a write error comes after the "writing" line).
        REQUIRE(!r.err.empty());
        const size_t start = r.err.rfind('\n', r.err.size() - 2);
        const std::string last = r.err.substr(start == std::string::npos ? 0 : start + 1);
        CHECK(last.find("kiln random-model: error: ") == 0);
        CHECK(last.find(c.message) != std::string::npos);
        CHECK_FALSE(std::filesystem::exists(out));
    }
}
