// `kiln info` as a user runs it: the real binary, its stdout, stderr and exit code.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "test_paths.h"

namespace {

struct Run {
    int exit_code = -1;
    std::string out;  // stdout, or stdout+stderr when asked
};

Run run_kiln(const std::string& args, bool merge_stderr) {
    const std::string cmd = "'" + kiln::test::kiln_binary() + "' " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
    Run r;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    const int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

std::string quoted(const std::string& path) { return "'" + path + "'"; }

}  // namespace

TEST_CASE("e2e info: --json on a shared model gives the documented facts") {
    const std::string model = kiln::test::model_path("kiln-test-15m-f16.gguf");
    const Run r = run_kiln("info " + quoted(model) + " --json --tensors", false);
    REQUIRE(r.exit_code == 0);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["file"] == model);
    CHECK(j["gguf_version"] == 3);
    CHECK(j["architecture"] == "llama");
    CHECK(j["name"] == "kiln-test-15m");
    CHECK(j["parameters_human"] == "15.2M");
    CHECK(j["parameters"].get<int64_t>() > 15'000'000);
    CHECK(j["context_length"] == 2048);
    CHECK(j["embedding_length"] == 288);
    CHECK(j["block_count"] == 6);
    CHECK(j["head_count"] == 6);
    CHECK(j["head_count_kv"] == 6);
    CHECK(j["feed_forward_length"] == 768);
    CHECK(j["tokenizer"]["model"] == "llama");
    CHECK(j["tokenizer"]["vocab_size"] == 32000);
    CHECK(j["chat_template"] == false);
    CHECK(j["file_size"].get<uint64_t>() > 30'000'000);
    const auto& mix = j["quant_mix"];
    REQUIRE(mix.size() == 2);
    CHECK(mix[0]["type"] == "f16");
    CHECK(mix[1]["type"] == "f32");
    CHECK(mix[0]["tensors"].get<int>() + mix[1]["tensors"].get<int>() == j["n_tensors"].get<int>());
    bool found = false;
    for (const auto& t : j["tensors"]) {
        if (t["name"] != "token_embd.weight") continue;
        found = true;
        CHECK(t["type"] == "f16");
        CHECK(t["shape"] == nlohmann::json::array({288, 32000}));
        CHECK(t["bytes"] == 288 * 32000 * 2);
    }
    CHECK(found);
}

TEST_CASE("e2e info: text output names the facts a person looks for") {
    const Run r = run_kiln("info " + quoted(kiln::test::model_path("kiln-test-gqa-q4_k_m.gguf")), false);
    REQUIRE(r.exit_code == 0);
    for (const char* s : {"architecture     llama", "20.2M", "kv heads         2", "q4_K", "q6_K", "chat template    no"}) {
        CAPTURE(s);
        CHECK(r.out.find(s) != std::string::npos);
    }
}

TEST_CASE("e2e info: a malformed file exits non-zero with one line of error") {
    const std::string bad = (kiln::test::shared_dir() / "malformed-gguf" / "div0_ne1_zero.gguf").string();
    const Run r = run_kiln("info " + quoted(bad), true);
    CHECK(r.exit_code == 1);
    REQUIRE(!r.out.empty());
    CHECK(r.out.back() == '\n');
    CHECK(r.out.find('\n') == r.out.size() - 1);
    CHECK(r.out.find("error") != std::string::npos);
    CHECK(r.out.find("ne[1] = 0") != std::string::npos);
    CHECK(r.out.find(bad) != std::string::npos);
}

TEST_CASE("e2e info: usage errors and --help") {
    const Run help = run_kiln("info --help", false);
    CHECK(help.exit_code == 0);
    CHECK(help.out.find("kiln info FILE") != std::string::npos);
    CHECK(help.out.find("--tensors") != std::string::npos);
    const Run none = run_kiln("info", true);
    CHECK(none.exit_code == 1);
    CHECK(none.out.find("no file given") != std::string::npos);
    const Run missing = run_kiln("info /nonexistent/x.gguf", true);
    CHECK(missing.exit_code == 1);
    CHECK(missing.out.find("/nonexistent/x.gguf: cannot open") != std::string::npos);
}
