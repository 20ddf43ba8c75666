#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace faultline::faults::time {

// Where a process's vDSO is mapped ([vdso] in /proc/PID/maps).
struct VdsoMapping {
  uint64_t base = 0;
  uint64_t size = 0;
};
// nullopt if the process has no vDSO (or is gone).
std::optional<VdsoMapping> FindVdso(pid_t pid);

// What a time fault needs to know of a vDSO image: its clock entry points and the unused tail
// of its mapping where the blob goes. Offsets are from the start of the mapping.
struct VdsoLayout {
  uint64_t clock_gettime = 0;
  uint64_t gettimeofday = 0;  // 0 if the vDSO has none
  uint64_t time = 0;          // 0 if the vDSO has none
  // [free_begin, image size): past every ELF header, section and table.
  uint64_t free_begin = 0;
};

// Parses an x86-64 vDSO image (the mapping's bytes). Throws FaultError saying what is missing.
VdsoLayout ParseVdso(const std::string& image);

// The agent's own vDSO: the same kernel maps the same image into every x86-64 process, so it
// is the reference a target's bytes are restored to when no journal says otherwise.
const std::string& OwnVdsoImage();

}  // namespace faultline::faults::time
