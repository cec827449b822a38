// `kiln run` and `kiln perplexity` as a user runs them.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "run_process.h"

using kiln::test::run_kiln_process;
using kiln::test::shell_quote;

namespace {

std::string model(const std::string& f) { return shell_quote(kiln::test::model_path(f)); }

int count_lines(const std::string& s) { return int(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_CASE("e2e run: greedy continuation equals llama.cpp's, speeds on stderr") {
    std::ifstream in(kiln::test::reference_path("kiln-test-15m-f16.greedy.jsonl"));
    std::string line;
    std::getline(in, line);
    const auto ref = nlohmann::json::parse(line);
    const auto r = run_kiln_process("run -m " + model("kiln-test-15m-f16.gguf") + " -p " +
                                    shell_quote(ref["prompt"]) + " -n 64 --temp 0 -t 2");
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == ref["greedy_text"].get<std::string>() + "\n");
    CHECK(r.err.find("prompt: 4 tokens") != std::string::npos);
    CHECK(r.err.find("tokens/s") != std::string::npos);
}

TEST_CASE("e2e run: the same seed gives the same text") {
    const std::string args = "run -m " + model("stories260K.gguf") + " -p 'Once upon a time' -n 40 --seed 42 --temp 1";
    const auto a = run_kiln_process(args), b = run_kiln_process(args);
    REQUIRE(a.exit_code == 0);
    CHECK(a.out == b.out);
    CHECK(a.out.size() > 20);
}

TEST_CASE("e2e run: errors are one clear line and a non-zero exit") {
    SUBCASE("missing file") {
        const auto r = run_kiln_process("run -m /nonexistent/model.gguf -p hi");
        CHECK(r.exit_code != 0);
        CHECK(r.err.find("model file not found: /nonexistent/model.gguf") != std::string::npos);
        CHECK(count_lines(r.err) == 1);
    }
    SUBCASE("not a GGUF file") {
        const auto r = run_kiln_process("run -m " + shell_quote(kiln::test::reference_path("prompts.txt")) + " -p hi");
        CHECK(r.exit_code != 0);
        CHECK(r.err.find("magic") != std::string::npos);
        CHECK(count_lines(r.err) == 1);
    }
    SUBCASE("prompt longer than the context") {
        const auto r = run_kiln_process("run -m " + model("stories260K.gguf") + " -c 8 -p 'Once upon a time there was a little girl'");
        CHECK(r.exit_code != 0);
        CHECK(r.err.find("but the context is 8") != std::string::npos);
        CHECK(count_lines(r.err) == 1);
    }
    SUBCASE("unsupported architecture") {
        // A copy of stories260K that claims another architecture.
        const auto src = kiln::GgufFile::open(kiln::test::model_path("stories260K.gguf"));
        kiln::GgufWriter w;
        for (const auto& kv : src.metadata())
            w.set(kv.key, kv.key == "general.architecture" ? kiln::GgufValue::str("mamba9") : kv.value);
        for (const auto& t : src.tensors())
            w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, t.n_bytes);
        const auto path = std::filesystem::temp_directory_path() / "kiln-test-unsupported-arch.gguf";
        w.write(path.string());
        const auto r = run_kiln_process("run -m " + shell_quote(path.string()) + " -p hi");
        std::filesystem::remove(path);
        CHECK(r.exit_code != 0);
        CHECK(r.err.find("mamba9") != std::string::npos);
        CHECK(count_lines(r.err) == 1);
    }
    SUBCASE("bad option values") {
        const auto r = run_kiln_process("run -m " + model("stories260K.gguf") + " -p hi --temp hot");
        CHECK(r.exit_code != 0);
        CHECK(r.err.find("--temp: 'hot' is not a number") != std::string::npos);
    }
    SUBCASE("no prompt") {
        const auto r = run_kiln_process("run -m " + model("stories260K.gguf"));
        CHECK(r.exit_code != 0);
        CHECK(r.err.find("no prompt given") != std::string::npos);
    }
}

TEST_CASE("e2e perplexity: prints llama-perplexity's final line") {
    // A short check through the binary; the full comparison with llama.cpp lives in test_perplexity.
    const auto r = run_kiln_process("perplexity -m " + model("stories260K.gguf") + " -f " +
                                    shell_quote(kiln::test::reference_path("eval.txt")) + " -c 128 -t 2");
    REQUIRE(r.exit_code == 0);
    CHECK(r.out.find("Final estimate: PPL = ") != std::string::npos);
}
