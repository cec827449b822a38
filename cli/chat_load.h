#pragma once
// Loading a model for an interactive command, with progress on stderr.
#include "cli/loaded_model.h"

namespace kiln::cli {

// load_for_cli(), then reads every weight page once so the first answer does not
// stall on page faults (weights are mmapped and used in place). With `show`, a
// progress bar over those bytes is drawn on stderr and replaced by a summary line.
LoadedModel load_with_progress(const ModelOptions& options, bool show);

}  // namespace kiln::cli
