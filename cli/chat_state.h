#pragma once
// What `kiln chat` keeps between runs, in the user's state directory
// ($XDG_STATE_HOME/kiln, by default ~/.local/state/kiln): the input history and
// the last model used, so `kiln chat` with no -m picks it up again.
#include <filesystem>
#include <optional>
#include <string>

namespace kiln::cli {

// Empty when neither XDG_STATE_HOME nor HOME is set.
std::filesystem::path state_dir();
std::filesystem::path history_path();

// The model remembered by remember_last_model(), if any.
std::optional<std::string> last_model();
// Best effort: a read-only home must not stop a chat.
void remember_last_model(const std::string& model_path);

}  // namespace kiln::cli
