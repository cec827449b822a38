// `kiln bench` as a user runs it: llama-bench's tests, and decode measured against
// the memory it reads from.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "run_process.h"

using kiln::test::run_kiln_process;
using kiln::test::shell_quote;

TEST_CASE("e2e bench: pp and tg rows, tg's bytes read per token against the measured bandwidth") {
    const auto r = run_kiln_process("bench -m " + shell_quote(kiln::test::model_path("stories260K.gguf")) +
                                    " --backend cpu -t 2 -p 16 -n 8 -r 2 --json");
    REQUIRE(r.exit_code == 0);
    const auto rows = nlohmann::json::parse(r.out);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0]["test"] == "pp16");
    CHECK(rows[1]["test"] == "tg8");
    CHECK(rows[1]["samples_ts"].size() == 2);
    const auto& tg = rows[1];
    // Weights read per token: at least the file's tensors less the token table's unread rows.
    CHECK(tg["bytes_per_token"].get<double>() > 0.5e6);
    CHECK(tg["achieved_bytes_per_second"].get<double>() ==
          doctest::Approx(tg["bytes_per_token"].get<double>() * tg["avg_ts"].get<double>()));
    CHECK(tg["memory_bytes_per_second"].get<double>() > 1e9);
    CHECK(tg["bandwidth_fraction"].get<double>() > 0.0);
}

TEST_CASE("e2e bench: --memory measures the CPU's memory, or says which devices it can measure") {
    const auto cpu = run_kiln_process("bench --memory -t 2 --json");
    REQUIRE(cpu.exit_code == 0);
    CHECK(nlohmann::json::parse(cpu.out)["memory_read_bytes_per_second"].get<double>() > 1e9);
    const auto vk = run_kiln_process("bench --memory --backend vulkan");
    CHECK(vk.exit_code != 0);
    CHECK(vk.err.find("not a Vulkan device's") != std::string::npos);
}

TEST_CASE("e2e bench: -p and -n take comma lists as llama-bench does, and a bad item is a usage error") {
    const auto r = run_kiln_process("bench -m " + shell_quote(kiln::test::model_path("stories260K.gguf")) +
                                    " --backend cpu -t 2 -p 8,24 -n 0,4 -r 1 --no-memory --json");
    REQUIRE(r.exit_code == 0);
    const auto rows = nlohmann::json::parse(r.out);
    REQUIRE(rows.size() == 3);  // pp8, pp24, tg4 (0 skips)
    CHECK(rows[0]["test"] == "pp8");
    CHECK(rows[1]["test"] == "pp24");
    CHECK(rows[2]["test"] == "tg4");
    const auto bad = run_kiln_process("bench -m " + shell_quote(kiln::test::model_path("stories260K.gguf")) +
                                      " -p 8,,16");
    CHECK(bad.exit_code != 0);
    CHECK(bad.err.find("--n-prompt: '' is not a whole number") != std::string::npos);
}
