#include "controller/state/store.h"

namespace faultline::controller {

void ValidateStateId(const std::string& id) {
  if (id.empty() || id.find('/') != std::string::npos || id.starts_with(".")) {
    throw std::invalid_argument("bad id \"" + id + "\": empty, has '/' or starts with '.'");
  }
}

}  // namespace faultline::controller
