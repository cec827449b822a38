#pragma once
// Reading the user's messages at the `kiln chat` prompt, with libedit: emacs
// keys (arrows, Ctrl-A/E, Ctrl-R ...), a history kept across runs, and messages
// of several lines.
#include <optional>
#include <string>

#include "cli/chat_terminal.h"

struct editline;
struct history;

namespace kiln::cli {

class LineEditor {
public:
    // `history_file` may be empty (no history kept across runs).
    LineEditor(std::string history_file, Palette palette);
    ~LineEditor();
    LineEditor(const LineEditor&) = delete;
    LineEditor& operator=(const LineEditor&) = delete;

    // One message, which may span lines:
    //   - a line ending in a backslash continues on the next line;
    //   - a line starting with """ opens a block that a line ending in """ closes;
    //   - several lines pasted at once (input already waiting after a line) are one message.
    // Ctrl-C abandons what was typed and asks again; Ctrl-C at an empty prompt or
    // Ctrl-D returns nullopt (the user is leaving).
    std::optional<std::string> read_message();

private:
    enum class Read { Line, Interrupted, End };
    Read read_line(bool continuation, std::string& line);
    void remember(const std::string& message);

    static const char* prompt_of(struct editline* el);
    static unsigned char on_ctrl_c(struct editline* el, int ch);

    std::string history_file_;
    Palette palette_;
    std::string primary_prompt_, continuation_prompt_;
    bool continuation_ = false;
    bool interrupted_ = false;
    bool interrupted_empty_ = false;  // Ctrl-C with nothing typed on the line
    struct editline* el_ = nullptr;
    struct history* history_ = nullptr;
};

}  // namespace kiln::cli
