#include "tests/support/certs.h"

#include <fstream>
#include <stdexcept>
#include <vector>

#include "tests/support/subprocess.h"

namespace faultline::testing {
namespace {

void OpenSsl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  if (RunCommand(argv, &out) != 0) throw std::runtime_error("openssl " + args[0] + ": " + out);
}

// A certificate DIR/NAME.crt (+ .key) with common name `cn` and the extensions `ext` (openssl
// extension-file lines), signed by DIR/ISSUER.
void Issue(const std::filesystem::path& dir, const std::string& name, const std::string& cn,
           const std::string& ext, const std::string& issuer) {
  std::string base = (dir / name).string(), ca = (dir / issuer).string();
  OpenSsl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn, "-keyout", base + ".key",
           "-out", base + ".csr"});
  std::ofstream(base + ".ext") << ext;
  OpenSsl({"x509", "-req", "-days", "1", "-in", base + ".csr", "-CA", ca + ".crt", "-CAkey",
           ca + ".key", "-CAcreateserial", "-out", base + ".crt", "-extfile", base + ".ext"});
}

}  // namespace

void MakeCa(const std::filesystem::path& dir, const std::string& name) {
  std::string base = (dir / name).string();
  OpenSsl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=" + name,
           "-keyout", base + ".key", "-out", base + ".crt"});
}

void IssueClientCert(const std::filesystem::path& dir, const std::string& name,
                     const std::string& cn, const std::string& issuer) {
  Issue(dir, name, cn, "extendedKeyUsage=clientAuth\n", issuer);
}

void IssueServerCert(const std::filesystem::path& dir, const std::string& name,
                     const std::string& ip, const std::string& issuer) {
  Issue(dir, name, ip, "extendedKeyUsage=serverAuth\nsubjectAltName=IP:" + ip + "\n", issuer);
}

}  // namespace faultline::testing
