// `kiln chat` as a user runs it: in a pseudo-terminal (typing, Ctrl-C, Ctrl-D,
// slash commands) and with stdin from a pipe.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>

#include "engine/conversation.h"
#include "formats/gguf.h"
#include "run_process.h"
#include "test_chat_pty.h"

namespace fs = std::filesystem;
using kiln::test::Pty;
using kiln::test::shell_quote;

namespace {

std::string model(const std::string& f) { return shell_quote(kiln::test::model_path(f)); }

// A fresh state directory (history, last model) and HOME per test, so nothing of the
// user's leaks in (~/.editrc) or out.
struct TempHome {
    fs::path dir;
    TempHome() {
        char tmpl[] = "/tmp/kiln-chat-test-XXXXXX";
        dir = ::mkdtemp(tmpl);
    }
    ~TempHome() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::map<std::string, std::string> env(bool colour = false) const {
        return {{"HOME", dir.string()},
                {"XDG_STATE_HOME", (dir / "state").string()},
                {"TERM", "xterm"},
                {"LANG", "C.UTF-8"},
                {"NO_COLOR", colour ? "" : "1"}};
    }
    std::string env_prefix() const {
        return "HOME=" + shell_quote(dir.string()) + " XDG_STATE_HOME=" + shell_quote((dir / "state").string()) + " ";
    }
};

// Points the processes a test starts (through run_kiln_process) at the temporary
// state directory, so no test writes the user's ~/.local/state/kiln.
struct ScopedStateHome {
    std::optional<std::string> previous;
    explicit ScopedStateHome(const TempHome& home) {
        if (const char* v = std::getenv("XDG_STATE_HOME")) previous = v;
        ::setenv("XDG_STATE_HOME", (home.dir / "state").c_str(), 1);
    }
    ~ScopedStateHome() {
        if (previous) ::setenv("XDG_STATE_HOME", previous->c_str(), 1);
        else ::unsetenv("XDG_STATE_HOME");
    }
};

// The chat, then its exit code and the terminal's modes once it has left. `set -m`:
// job control, as in an interactive shell, so Ctrl-C typed while kiln is not reading
// the terminal (it is generating) signals kiln's process group only, not the shell.
std::string chat_command(const std::string& args) {
    return "set -m; " + shell_quote(kiln::test::kiln_binary()) + " chat " + args + "; echo \"EXIT=$?\"; stty -a";
}

struct Stats {
    long in_use = -1, n_ctx = -1, messages = -1, prompt = -1, evaluated = -1, reused = -1;
};

Stats parse_stats(const std::string& text) {
    Stats s;
    std::smatch m;
    if (std::regex_search(text, m, std::regex(R"(context: (\d+) of (\d+) tokens in use, (\d+) messages)"))) {
        s.in_use = std::stol(m[1]);
        s.n_ctx = std::stol(m[2]);
        s.messages = std::stol(m[3]);
    }
    if (std::regex_search(text, m, std::regex(R"(last prompt: (\d+) tokens, (\d+) evaluated, (\d+) reused)"))) {
        s.prompt = std::stol(m[1]);
        s.evaluated = std::stol(m[2]);
        s.reused = std::stol(m[3]);
    }
    return s;
}

// Sends /stats and returns what it printed.
Stats stats(Pty& pty) {
    pty.type_line("/stats");
    std::string out;
    REQUIRE(pty.expect("prompt tokens evaluated in this chat", &out));
    REQUIRE(pty.expect(">>> "));
    return parse_stats(out);
}

// One exchange: types the message, returns what came back before the next prompt.
std::string say(Pty& pty, const std::string& message, double timeout_s = 30) {
    pty.type_line(message);
    REQUIRE(pty.expect(message + "\r\n"));  // libedit's echo of the line
    std::string answer;
    REQUIRE(pty.expect(">>> ", &answer, timeout_s));
    return answer;
}

// The terminal is back in its normal mode: line editing, echo, Ctrl-C as a signal.
void check_terminal_restored(const std::string& stty) {
    CHECK(std::regex_search(stty, std::regex(R"((^|\s)icanon\s)")));
    CHECK(std::regex_search(stty, std::regex(R"((^|\s)echo\s)")));
    CHECK(std::regex_search(stty, std::regex(R"((^|\s)isig\s)")));
}

nlohmann::json read_json(const fs::path& p) {
    std::ifstream in(p);
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A copy of a test model with tokenizer.chat_template set (the shared models have none).
fs::path model_with_template(const fs::path& dir, const std::string& model_file, const std::string& template_source) {
    const auto src = kiln::GgufFile::open(kiln::test::model_path(model_file));
    kiln::GgufWriter w;
    for (const auto& kv : src.metadata()) w.set(kv.key, kv.value);
    w.set("tokenizer.chat_template", kiln::GgufValue::str(template_source));
    for (const auto& t : src.tensors())
        w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims), t.data, t.n_bytes);
    const fs::path out = dir / ("templated-" + model_file);
    w.write(out.string());
    return out;
}

}  // namespace

TEST_CASE("e2e chat: two turns - the second evaluates only the new tokens and takes the history from the cache") {
    TempHome home;
    Pty pty(chat_command("-m " + model("stories260K.gguf") + " --temp 0 -n 24 -t 2 --system 'Stories for kids.'"),
            home.env());
    REQUIRE(pty.started());
    REQUIRE(pty.expect("plain User:/Assistant: transcript"));  // the no-template notice
    REQUIRE(pty.expect(">>> "));

    const std::string first = say(pty, "Tell me about a dog");
    CHECK(first.size() > 20);  // the answer streamed between the echo and the next prompt
    const Stats s1 = stats(pty);
    CHECK(s1.evaluated == s1.prompt);  // nothing cached before the first turn
    CHECK(s1.messages == 3);
    CHECK(s1.in_use == s1.prompt + 24);

    const std::string second = say(pty, "What happened next?");
    CHECK(second.size() > 20);
    const Stats s2 = stats(pty);
    CHECK(s2.messages == 5);
    // The first turn (its prompt and answer) was reused, not evaluated again.
    CHECK(s2.reused >= s1.in_use);
    CHECK(s2.prompt == s2.reused + s2.evaluated);

    pty.type_line("/exit");
    CHECK(pty.wait_exit() == 0);
    CHECK(pty.rest().find("EXIT=0") != std::string::npos);
    check_terminal_restored(pty.rest());
    // The history file got both messages; the last model was remembered.
    const std::string history = read_text(home.dir / "state" / "kiln" / "history");
    CHECK(history.find("Tell") != std::string::npos);
    CHECK(history.find("happened") != std::string::npos);
    CHECK(read_text(home.dir / "state" / "kiln" / "last_model") == kiln::test::model_path("stories260K.gguf") + "\n");
}

TEST_CASE("e2e chat: the model's own chat template is applied with one BOS") {
    TempHome home;
    const std::string jinja = read_text(kiln::test::shared_dir() / "chat-templates" /
                                        "mistralai-Mistral-Nemo-Instruct-2407.jinja");
    const fs::path path = model_with_template(home.dir, "kiln-test-15m-q8_0.gguf", jinja);
    Pty pty(chat_command("-m " + shell_quote(path.string()) + " --temp 0 -n 32 -t 2"), home.env());
    REQUIRE(pty.expect(">>> "));
    say(pty, "The cat sat on the mat.");
    const Stats s1 = stats(pty);
    say(pty, "Where is the cat?");
    const Stats s2 = stats(pty);
    pty.type_line("/save " + (home.dir / "c.json").string());
    REQUIRE(pty.expect(">>> "));
    pty.press("\x04");  // Ctrl-D
    CHECK(pty.wait_exit() == 0);
    CHECK(pty.output().find("no chat template") == std::string::npos);

    // The prompts are exactly the template's rendering, tokenized with a single BOS.
    auto tok = kiln::Tokenizer::from_gguf(kiln::GgufFile::open(path.string()));
    kiln::Conversation c({"model", jinja, {}}, *tok);
    c.add("user", "The cat sat on the mat.");
    CHECK(c.render(true) == "<s>[INST]The cat sat on the mat.[/INST]");
    CHECK(s1.prompt == long(c.prompt(1 << 20, 1 << 20).tokens.size()));
    const auto saved = read_json(home.dir / "c.json");
    REQUIRE(saved.size() == 4);
    c.load_json(saved);
    c.pop_last();  // the second answer
    CHECK(s2.prompt == long(c.prompt(1 << 20, 1 << 20).tokens.size()));
    CHECK(s2.reused >= s1.prompt);
}

TEST_CASE("e2e chat: Ctrl-C stops an answer and keeps it - Ctrl-C at an empty prompt leaves cleanly") {
    TempHome home;
    // stories260K writes on and on; a large context keeps it writing until stopped.
    Pty pty(chat_command("-m " + model("stories260K.gguf") + " -c 65536 -n 60000 --temp 1 --seed 7 -t 2"), home.env());
    REQUIRE(pty.expect(">>> "));
    pty.type_line("Tell me a long story");
    REQUIRE(pty.expect("Tell me a long story\r\n"));
    std::string some;
    REQUIRE(pty.expect(" ", &some));
    for (int i = 0; i < 30; ++i) REQUIRE(pty.expect(" "));  // let it write a few words
    pty.send("\x03");
    REQUIRE(pty.expect("(stopped)", nullptr, 20));
    REQUIRE(pty.expect(">>> "));
    const Stats s = stats(pty);
    CHECK(s.messages == 2);
    CHECK(s.in_use < 60000);

    // The partial answer is part of the conversation.
    pty.type_line("/save " + (home.dir / "partial.json").string());
    REQUIRE(pty.expect(">>> "));
    const auto saved = read_json(home.dir / "partial.json");
    REQUIRE(saved.size() == 2);
    CHECK(saved[1]["role"] == "assistant");
    CHECK(saved[1]["content"].get<std::string>().size() > 30);

    // Ctrl-C with text typed abandons the line only; at an empty prompt it exits.
    pty.send("half a thought");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    pty.send("\x03");
    REQUIRE(pty.expect("^C\r\n"));
    REQUIRE(pty.expect(">>> "));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    pty.send("\x03");
    CHECK(pty.wait_exit() == 0);
    const std::string tail = pty.rest();
    CHECK(tail.find("EXIT=0") != std::string::npos);
    CHECK(tail.find("terminate") == std::string::npos);
    check_terminal_restored(tail);
}

TEST_CASE("e2e chat: slash commands /reset /system /save /load /set /help and unknown ones") {
    TempHome home;
    const fs::path file = home.dir / "conv.json";
    Pty pty(chat_command("-m " + model("stories260K.gguf") + " --temp 0 -n 16 -t 2"), home.env());
    REQUIRE(pty.expect(">>> "));
    pty.type_line("/system You are kind.");
    REQUIRE(pty.expect("(system prompt set"));
    REQUIRE(pty.expect(">>> "));
    say(pty, "Hi");
    say(pty, "Who are you?");
    pty.type_line("/save " + file.string());
    REQUIRE(pty.expect("(saved 5 messages to "));
    REQUIRE(pty.expect(">>> "));
    const auto saved = read_json(file);
    REQUIRE(saved.size() == 5);
    CHECK(saved[0] == nlohmann::json({{"role", "system"}, {"content", "You are kind."}}));
    CHECK(saved[1] == nlohmann::json({{"role", "user"}, {"content", "Hi"}}));
    CHECK(saved[2]["role"] == "assistant");
    CHECK(!saved[2]["content"].get<std::string>().empty());
    CHECK(saved[3] == nlohmann::json({{"role", "user"}, {"content", "Who are you?"}}));

    pty.type_line("/reset");
    REQUIRE(pty.expect("(new conversation)"));
    REQUIRE(pty.expect(">>> "));
    Stats s = stats(pty);
    CHECK(s.in_use == 0);
    CHECK(s.messages == 1);  // the system prompt stays
    say(pty, "Hi");
    s = stats(pty);
    CHECK(s.evaluated == s.prompt);  // nothing of the old conversation was left to reuse
    pty.type_line("/system");
    REQUIRE(pty.expect("You are kind.\r\n"));
    REQUIRE(pty.expect(">>> "));

    pty.type_line("/load " + file.string());
    REQUIRE(pty.expect("(loaded 5 messages from "));
    REQUIRE(pty.expect(">>> "));
    s = stats(pty);
    CHECK(s.messages == 5);
    const fs::path again = home.dir / "again.json";
    pty.type_line("/save " + again.string());
    REQUIRE(pty.expect(">>> "));
    CHECK(read_json(again) == saved);
    say(pty, "Tell me more");
    s = stats(pty);
    CHECK(s.messages == 7);

    pty.type_line("/load " + (home.dir / "missing.json").string());
    REQUIRE(pty.expect("error: cannot read "));
    REQUIRE(pty.expect(">>> "));
    pty.type_line("/set temp 0.5");
    REQUIRE(pty.expect("(temp = 0.5)"));
    REQUIRE(pty.expect(">>> "));
    pty.type_line("/set top_k 7");
    REQUIRE(pty.expect("(top-k = 7)"));
    REQUIRE(pty.expect(">>> "));
    pty.type_line("/set temp hot");
    REQUIRE(pty.expect("error: --temp: 'hot' is not a number"));
    REQUIRE(pty.expect(">>> "));
    pty.type_line("/set warmth 3");
    REQUIRE(pty.expect("error: unknown setting 'warmth'"));
    REQUIRE(pty.expect(">>> "));
    pty.type_line("/set");
    REQUIRE(pty.expect("temp 0.5\r\ntop-k 7\r\n"));
    REQUIRE(pty.expect(">>> "));
    pty.type_line("/frobnicate");
    REQUIRE(pty.expect("error: unknown command /frobnicate; /help lists the commands"));
    REQUIRE(pty.expect(">>> "));
    pty.type_line("/help");
    REQUIRE(pty.expect("/save FILE"));
    REQUIRE(pty.expect(">>> "));
    pty.type_line("/bye");
    CHECK(pty.wait_exit() == 0);
    CHECK(pty.rest().find("EXIT=0") != std::string::npos);
}

TEST_CASE("e2e chat: a conversation outgrowing the context drops the oldest turns and says so once") {
    TempHome home;
    const fs::path file = home.dir / "trimmed.json";
    Pty pty(chat_command("-m " + model("stories260K.gguf") + " -c 96 --temp 0 -n 12 -t 2 --system 'Be nice.'"),
            home.env());
    REQUIRE(pty.expect(">>> "));
    for (int i = 0; i < 8; ++i) {
        const std::string answer = say(pty, "Question " + std::to_string(i) + " about the red ball?");
        CHECK(answer.find("error") == std::string::npos);
        const Stats s = stats(pty);
        CHECK(s.in_use <= 96);
    }
    pty.type_line("/save " + file.string());
    REQUIRE(pty.expect(">>> "));
    pty.press("\x04");
    CHECK(pty.wait_exit() == 0);

    const std::string& out = pty.output();
    const std::string notice = "the conversation outgrew the context of 96 tokens";
    const auto first = out.find(notice);
    REQUIRE(first != std::string::npos);
    CHECK(out.find(notice, first + 1) == std::string::npos);  // once
    const auto saved = read_json(file);
    CHECK(saved[0] == nlohmann::json({{"role", "system"}, {"content", "Be nice."}}));
    CHECK(saved[1]["role"] == "user");
    CHECK(saved[1]["content"] != "Question 0 about the red ball?");
    CHECK(saved[saved.size() - 2]["content"] == "Question 7 about the red ball?");
    CHECK(saved.size() < 17);
}

TEST_CASE("e2e chat: multi-line messages (backslash or triple quotes or paste) are one turn - emacs keys - history across runs") {
    TempHome home;
    const fs::path file = home.dir / "lines.json";
    Pty pty(chat_command("-m " + model("stories260K.gguf") + " --temp 0 -n 4 -t 2"), home.env());
    REQUIRE(pty.expect(">>> "));
    pty.type_line("first line \\");
    REQUIRE(pty.expect("... "));
    say(pty, "second line");
    pty.type_line("\"\"\"a block");
    REQUIRE(pty.expect("... "));
    pty.type_line("");
    REQUIRE(pty.expect("... "));
    say(pty, "ends here\"\"\"");
    pty.send("pasted one\rpasted two\r");  // arrives at once, as a paste does
    REQUIRE(pty.expect("pasted two\r\n"));
    REQUIRE(pty.expect(">>> "));
    // Emacs keys: Ctrl-A to the start of the line, Ctrl-E to its end.
    pty.send("bc");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    pty.send("\x01");
    pty.send("a");
    pty.send("\x05");
    pty.send("d");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    pty.send("\r");
    REQUIRE(pty.expect(">>> "));
    pty.type_line("/save " + file.string());
    REQUIRE(pty.expect("(saved "));
    REQUIRE(pty.expect(">>> "));
    pty.press("\x04");
    CHECK(pty.wait_exit() == 0);
    const auto saved = read_json(file);
    REQUIRE(saved.size() == 8);
    CHECK(saved[0]["content"] == "first line \nsecond line");
    CHECK(saved[2]["content"] == "a block\n\nends here");
    CHECK(saved[4]["content"] == "pasted one\npasted two");
    CHECK(saved[6]["content"] == "abcd");

    // The history outlives the process: Up arrow twice recalls the message before /save.
    const fs::path file2 = home.dir / "recalled.json";
    Pty again(chat_command("-m " + model("stories260K.gguf") + " --temp 0 -n 4 -t 2"), home.env());
    REQUIRE(again.expect(">>> "));
    again.send("\033[A");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    again.send("\033[A");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    again.send("\r");
    REQUIRE(again.expect(">>> "));
    again.type_line("/save " + file2.string());
    REQUIRE(again.expect("(saved "));
    REQUIRE(again.expect(">>> "));
    again.type_line("/exit");
    CHECK(again.wait_exit() == 0);
    const auto recalled = read_json(file2);
    REQUIRE(recalled.size() == 2);
    CHECK(recalled[0]["content"] == "abcd");
}

TEST_CASE("e2e chat: colours on a terminal unless NO_COLOR is set") {
    TempHome home;
    const std::string bold_green = "\033[1;32m";
    {
        Pty pty(chat_command("-m " + model("stories260K.gguf") + " -n 4 -t 2"), home.env(/*colour=*/true));
        REQUIRE(pty.expect(">>> "));
        pty.press("\x04");
        CHECK(pty.wait_exit() == 0);

        CHECK(pty.output().find(bold_green) != std::string::npos);
    }
    {
        Pty pty(chat_command("-m " + model("stories260K.gguf") + " -n 4 -t 2"), home.env(/*colour=*/false));
        REQUIRE(pty.expect(">>> "));
        pty.press("\x04");
        CHECK(pty.wait_exit() == 0);
        CHECK(pty.output().find("\033[") == std::string::npos);
    }
}

TEST_CASE("e2e chat: stdin from a pipe is one user turn and only the answer is printed") {
    TempHome home;
    ScopedStateHome state(home);
    const std::string message = "Hello there.\nWhat is your name?";
    const auto r = kiln::test::run_kiln_process(
        "chat -m " + model("stories260K.gguf") + " --temp 0 -n 30 -t 2", message);
    REQUIRE(r.exit_code == 0);
    // The same tokens as `kiln run` on the plain transcript of that one turn.
    const auto run = kiln::test::run_kiln_process("run -m " + model("stories260K.gguf") + " --temp 0 -n 30 -t 2 -p " +
                                                  shell_quote("User: " + message + "\nAssistant:"));
    REQUIRE(run.exit_code == 0);
    const auto start = run.out.find_first_not_of(' ');
    CHECK(r.out == run.out.substr(start));
    CHECK(r.out.find("\033[") == std::string::npos);
    CHECK(r.out.find(">>>") == std::string::npos);
    CHECK(r.err.find("no chat template") != std::string::npos);

    SUBCASE("a chosen built-in format and template file; bad choices are clear errors") {
        const auto c = kiln::test::run_kiln_process(
            "chat -m " + model("stories260K.gguf") + " --temp 0 -n 8 --chat-template-name chatml", "Hi");
        CHECK(c.exit_code == 0);
        CHECK(c.err.find("no chat template") == std::string::npos);
        const auto bad = kiln::test::run_kiln_process("chat -m " + model("stories260K.gguf") + " --chat-template-name nope", "Hi");
        CHECK(bad.exit_code != 0);
        CHECK(bad.err.find("unknown format 'nope' (known: plain, chatml, llama2, llama3)") != std::string::npos);
        const auto missing = kiln::test::run_kiln_process(
            "chat -m " + model("stories260K.gguf") + " --chat-template /nonexistent.jinja", "Hi");
        CHECK(missing.exit_code != 0);
        CHECK(missing.err.find("cannot read /nonexistent.jinja") != std::string::npos);
        const fs::path broken = home.dir / "broken.jinja";
        std::ofstream(broken) << "{% for m in messages %}";
        const auto syntax = kiln::test::run_kiln_process(
            "chat -m " + model("stories260K.gguf") + " --chat-template " + shell_quote(broken.string()), "Hi");
        CHECK(syntax.exit_code != 0);
        CHECK(syntax.err.find("chat template") != std::string::npos);
        CHECK(std::count(syntax.err.begin(), syntax.err.end(), '\n') == 1);
    }
    SUBCASE("empty stdin is a clear error") {
        const auto e = kiln::test::run_kiln_process("chat -m " + model("stories260K.gguf"), "");
        CHECK(e.exit_code != 0);
        CHECK(e.err.find("stdin is empty") != std::string::npos);
    }
}

TEST_CASE("e2e chat: without -m the last model used or a message saying how to get one") {
    TempHome home;
    const std::string env = home.env_prefix();
    // run_kiln_process cannot set the environment: run through `env`, stderr merged.
    auto with_env = [&](const std::string& args) {
        const std::string cmd = "printf 'Hi' | env " + env + shell_quote(kiln::test::kiln_binary()) + " " + args +
                                " 2>&1";
        std::string out;
        FILE* p = ::popen(cmd.c_str(), "r");
        REQUIRE(p != nullptr);
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        const int status = ::pclose(p);
        return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
    };
    auto [code, out] = with_env("chat");
    CHECK(code != 0);
    CHECK(out.find("no model given: pass -m FILE.gguf") != std::string::npos);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);

    std::tie(code, out) = with_env("chat -m " + model("stories260K.gguf") + " -n 5 --temp 0");
    CHECK(code == 0);
    const std::string first_answer = out;
    std::tie(code, out) = with_env("chat -n 5 --temp 0");
    CHECK(code == 0);
    CHECK(out == first_answer);

    // The remembered model is gone: say which and what to do.
    const fs::path copy = home.dir / "copy.gguf";
    fs::copy_file(kiln::test::model_path("stories260K.gguf"), copy);
    std::tie(code, out) = with_env("chat -m " + shell_quote(copy.string()) + " -n 5");
    CHECK(code == 0);
    fs::remove(copy);
    std::tie(code, out) = with_env("chat");
    CHECK(code != 0);
    CHECK(out.find("(" + copy.string() + ") is gone: pass -m FILE.gguf") != std::string::npos);
}
