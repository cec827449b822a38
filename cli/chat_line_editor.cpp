#include "cli/chat_line_editor.h"

#include <histedit.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace kiln::cli {
namespace {

// Marks prompt bytes that take no room on screen (colour escapes) for libedit.
constexpr char kInvisible = '\1';

std::string coloured_prompt(const Palette& p, const char* text) {
    if (!*p.prompt) return text;
    return std::string(1, kInvisible) + p.prompt + kInvisible + text + kInvisible + p.reset + kInvisible;
}

// Pasted text arrives faster than anyone types: input already waiting right after a
// line was read means the line is part of a paste.
bool input_waiting(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

LineEditor::LineEditor(std::string history_file, Palette palette)
    : history_file_(std::move(history_file)),
      palette_(palette),
      primary_prompt_(coloured_prompt(palette, ">>> ")),
      continuation_prompt_(coloured_prompt(palette, "... ")) {
    el_ = ::el_init("kiln", stdin, stdout, stderr);
    if (!el_) throw std::runtime_error("cannot set up line editing on this terminal (libedit el_init failed)");
    history_ = ::history_init();
    HistEvent ev;
    ::history(history_, &ev, H_SETSIZE, 1000);
    ::history(history_, &ev, H_SETUNIQUE, 1);
    if (!history_file_.empty()) ::history(history_, &ev, H_LOAD, history_file_.c_str());

    ::el_set(el_, EL_CLIENTDATA, this);
    ::el_set(el_, EL_EDITOR, "emacs");
    ::el_set(el_, EL_HIST, ::history, history_);
    ::el_set(el_, EL_PROMPT_ESC, &LineEditor::prompt_of, kInvisible);
    // libedit restores the terminal before any signal's own handling (SIGTERM, SIGTSTP...).
    ::el_set(el_, EL_SIGNAL, 1);
    // While editing, Ctrl-C is a key, not SIGINT: it then acts on the line being typed.
    ::el_set(el_, EL_SETTY, "-d", "-isig", nullptr);
    ::el_set(el_, EL_ADDFN, "kiln-interrupt", "abandon the line, or leave at an empty prompt", &LineEditor::on_ctrl_c);
    ::el_set(el_, EL_BIND, "^C", "kiln-interrupt", nullptr);
    ::el_source(el_, nullptr);  // the user's ~/.editrc, as other libedit programs do
}

LineEditor::~LineEditor() {
    ::el_end(el_);
    ::history_end(history_);
}

const char* LineEditor::prompt_of(EditLine* el) {
    LineEditor* self = nullptr;
    ::el_get(el, EL_CLIENTDATA, &self);
    return (self->continuation_ ? self->continuation_prompt_ : self->primary_prompt_).c_str();
}

unsigned char LineEditor::on_ctrl_c(EditLine* el, int) {
    LineEditor* self = nullptr;
    ::el_get(el, EL_CLIENTDATA, &self);
    const LineInfo* li = ::el_line(el);
    self->interrupted_ = true;
    self->interrupted_empty_ = li->lastchar == li->buffer;
    return CC_NEWLINE;
}

LineEditor::Read LineEditor::read_line(bool continuation, std::string& line) {
    continuation_ = continuation;
    interrupted_ = interrupted_empty_ = false;
    int count = 0;
    const char* text = ::el_gets(el_, &count);
    if (interrupted_) {
        std::fputs("^C\n", stdout);  // as a shell shows an abandoned line
        std::fflush(stdout);
        return Read::Interrupted;
    }
    if (!text || count <= 0) {
        std::fputc('\n', stdout);  // leave the shell's prompt on a line of its own
        std::fflush(stdout);
        return Read::End;
    }
    line.assign(text, size_t(count));
    if (!line.empty() && line.back() == '\n') line.pop_back();
    return Read::Line;
}

std::optional<std::string> LineEditor::read_message() {
    std::string message, line;
    for (;;) {
        const Read r = read_line(false, line);
        if (r == Read::End) return std::nullopt;
        if (r == Read::Interrupted) {
            if (interrupted_empty_) return std::nullopt;
            continue;
        }
        message = line;
        break;
    }

    bool block = message.starts_with("\"\"\"");
    if (block) {
        message.erase(0, 3);
        if (message.size() >= 3 && ends_with(message, "\"\"\"")) {  // """one line"""
            message.resize(message.size() - 3);
            block = false;
        }
    }
    for (;;) {
        bool more = false;
        if (block) {
            more = true;
        } else if (ends_with(message, "\\")) {
            message.pop_back();
            more = true;
        } else if (input_waiting(STDIN_FILENO)) {
            more = true;
        }
        if (!more) break;
        const Read r = read_line(true, line);
        if (r == Read::Interrupted) return std::string();  // abandon the whole message
        if (r == Read::End) break;
        message += '\n';
        if (block && ends_with(line, "\"\"\"")) {
            message.append(line, 0, line.size() - 3);
            block = false;
            continue;
        }
        message += line;
    }
    remember(message);
    return message;
}

void LineEditor::remember(const std::string& message) {
    if (message.find_first_not_of(" \t\n") == std::string::npos) return;
    HistEvent ev;
    ::history(history_, &ev, H_ENTER, message.c_str());
    if (history_file_.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(history_file_).parent_path(), ec);
    if (::history(history_, &ev, H_SAVE, history_file_.c_str()) >= 0)
        ::chmod(history_file_.c_str(), 0600);  // conversations are private
}

}  // namespace kiln::cli
