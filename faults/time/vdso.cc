#include "faults/time/vdso.h"

#include <elf.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "faults/core/errors.h"

namespace faultline::faults::time {
namespace {

template <typename T>
T At(const std::string& image, uint64_t off) {
  if (off > image.size() || image.size() - off < sizeof(T)) {
    throw FaultError("vDSO image: read past its end at offset " + std::to_string(off));
  }
  T v;
  std::memcpy(&v, image.data() + off, sizeof(T));
  return v;
}

}  // namespace

std::optional<VdsoMapping> FindVdso(pid_t pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.size() < 6 || line.compare(line.size() - 6, 6, "[vdso]") != 0) continue;
    VdsoMapping m;
    char dash;
    std::istringstream in(line);
    in >> std::hex >> m.base >> dash >> m.size;
    if (!in || m.size <= m.base) return std::nullopt;
    m.size -= m.base;
    return m;
  }
  return std::nullopt;
}

VdsoLayout ParseVdso(const std::string& image) {
  auto eh = At<Elf64_Ehdr>(image, 0);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_machine != EM_X86_64) {
    throw FaultError("vDSO is not an x86-64 ELF image");
  }
  if (eh.e_shoff == 0 || eh.e_shnum == 0 || eh.e_shentsize != sizeof(Elf64_Shdr)) {
    throw FaultError("vDSO image has no section headers");
  }
  uint64_t used = std::max<uint64_t>(eh.e_shoff + uint64_t{eh.e_shnum} * eh.e_shentsize,
                                     eh.e_phoff + uint64_t{eh.e_phnum} * eh.e_phentsize);
  // The first PT_LOAD's vaddr is the image's link address (0 for x86-64 vDSOs).
  uint64_t link = 0;
  for (int i = 0; i < eh.e_phnum; ++i) {
    auto ph = At<Elf64_Phdr>(image, eh.e_phoff + static_cast<uint64_t>(i) * eh.e_phentsize);
    if (ph.p_type == PT_LOAD) {
      link = ph.p_vaddr - ph.p_offset;
      break;
    }
  }
  VdsoLayout l;
  std::optional<Elf64_Shdr> dynsym;
  std::vector<Elf64_Shdr> sections;
  for (int i = 0; i < eh.e_shnum; ++i) {
    auto sh = At<Elf64_Shdr>(image, eh.e_shoff + static_cast<uint64_t>(i) * eh.e_shentsize);
    sections.push_back(sh);
    if (sh.sh_type != SHT_NOBITS) used = std::max(used, sh.sh_offset + sh.sh_size);
    if (sh.sh_type == SHT_DYNSYM) dynsym = sh;
  }
  if (!dynsym || dynsym->sh_link >= sections.size() || dynsym->sh_entsize != sizeof(Elf64_Sym)) {
    throw FaultError("vDSO image has no dynamic symbol table");
  }
  const Elf64_Shdr& strtab = sections[dynsym->sh_link];
  for (uint64_t off = 0; off + sizeof(Elf64_Sym) <= dynsym->sh_size; off += sizeof(Elf64_Sym)) {
    auto sym = At<Elf64_Sym>(image, dynsym->sh_offset + off);
    if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_name >= strtab.sh_size) continue;
    const char* name = image.data() + strtab.sh_offset + sym.st_name;
    size_t max = strtab.sh_size - sym.st_name;
    std::string n(name, strnlen(name, max));
    uint64_t at = sym.st_value - link;
    if (n == "__vdso_clock_gettime") l.clock_gettime = at;
    if (n == "__vdso_gettimeofday") l.gettimeofday = at;
    if (n == "__vdso_time") l.time = at;
  }
  if (l.clock_gettime == 0) throw FaultError("vDSO exports no __vdso_clock_gettime");
  l.free_begin = (used + 15) & ~uint64_t{15};
  return l;
}

const std::string& OwnVdsoImage() {
  static const std::string image = [] {
    auto base = getauxval(AT_SYSINFO_EHDR);
    auto m = FindVdso(::getpid());
    if (base == 0 || !m || m->base != base) throw FaultError("the agent has no vDSO");
    return std::string(reinterpret_cast<const char*>(base), m->size);
  }();
  return image;
}

}  // namespace faultline::faults::time
