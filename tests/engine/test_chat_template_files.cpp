// Every chat template in ../shared/chat-templates must render each case of its
// .expected.json exactly as Python jinja2 + transformers did (the file's
// "renderer" field says how; its strftime_now date is read from there).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "engine/chat_template.h"
#include "test_paths.h"

namespace {

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot open " << p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// "strftime_now(fixed date 2026-11-23)" -> that date at midnight.
std::optional<std::tm> fixed_date(const std::string& renderer) {
    std::smatch m;
    if (!std::regex_search(renderer, m, std::regex(R"(fixed date (\d{4})-(\d{2})-(\d{2}))"))) return std::nullopt;
    std::tm tm{};
    tm.tm_year = std::stoi(m[1]) - 1900;
    tm.tm_mon = std::stoi(m[2]) - 1;
    tm.tm_mday = std::stoi(m[3]);
    std::mktime(&tm);  // fills tm_wday / tm_yday for %a, %j
    return tm;
}

}  // namespace

TEST_CASE("chat template files: every shared template renders its expected cases exactly") {
    auto dir = kiln::test::shared_dir() / "chat-templates";
    REQUIRE(std::filesystem::is_directory(dir));
    std::vector<std::filesystem::path> templates;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        if (entry.path().extension() == ".jinja") templates.push_back(entry.path());
    std::sort(templates.begin(), templates.end());
    REQUIRE(templates.size() >= 12);

    int total = 0, passed = 0;
    for (const auto& path : templates) {
        auto expected_path = path;
        expected_path.replace_extension(".expected.json");
        auto spec = nlohmann::ordered_json::parse(read_file(expected_path));
        std::string renderer = spec.value("renderer", "");
        CHECK_MESSAGE(renderer.find("trim_blocks=True, lstrip_blocks=True") != std::string::npos,
                      "unexpected renderer for " << path.filename() << ": " << renderer);

        kiln::ChatTemplateContext ctx;
        ctx.bos_token = spec.value("bos_token", "");
        ctx.eos_token = spec.value("eos_token", "");
        ctx.now = fixed_date(renderer);
        if (spec.contains("tools")) ctx.tools = spec["tools"];
        for (const char* extra : {"date_string", "builtin_tools", "custom_tools", "tools_in_user_message"})
            if (spec.contains(extra)) ctx.extra_vars[extra] = spec[extra];

        auto tmpl = kiln::ChatTemplate::parse(read_file(path));
        int ok = 0, n = 0;
        for (const auto& c : spec["cases"]) {
            ++n;
            auto case_ctx = ctx;
            if (c.contains("tools")) case_ctx.tools = c["tools"];
            bool agp = c.value("add_generation_prompt", false);
            INFO(path.filename().string() << " case " << n);
            if (c.contains("error")) {
                std::string want = c["error"];
                bool threw = false;
                try {
                    tmpl.render(c["messages"], agp, case_ctx);
                } catch (const kiln::ChatTemplateError& e) {
                    threw = true;
                    CHECK_MESSAGE(std::string(e.what()).find(want) != std::string::npos, e.what());
                    ok += std::string(e.what()).find(want) != std::string::npos;
                }
                CHECK_MESSAGE(threw, "expected an error containing: " << want);
            } else {
                std::string got = tmpl.render(c["messages"], agp, case_ctx);
                CHECK(got == c["expected"].get<std::string>());
                ok += got == c["expected"].get<std::string>();
            }
        }
        MESSAGE(path.filename().string() << ": " << ok << "/" << n << " cases pass");
        total += n;
        passed += ok;
    }
    MESSAGE("chat template files: " << passed << "/" << total << " cases pass");
    CHECK(passed == total);
}
