#include "proto/transport/certs.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <stdexcept>

namespace faultline::transport {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free_all(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;

[[noreturn]] void Fail(const std::string& what) {
  throw std::runtime_error("certs: " + what + " failed");
}

Key NewKey() {
  Key k(EVP_EC_gen("P-256"));
  if (!k) Fail("EC key generation");
  return k;
}

void AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, Free> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) Fail("extension " + value);
}

std::string SubjectAltNames(const std::vector<std::string>& hosts) {
  std::string san;
  for (const auto& h : hosts) {
    in6_addr a6{};
    in_addr a4{};
    bool ip = inet_pton(AF_INET, h.c_str(), &a4) == 1 || inet_pton(AF_INET6, h.c_str(), &a6) == 1;
    san += (san.empty() ? "" : ",") + std::string(ip ? "IP:" : "DNS:") + h;
  }
  return san;
}

// Issues a certificate for `key` signed by (issuer, issuer_key); self-signed if issuer is null.
Cert Issue(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, int days,
           bool ca, const std::string& eku, const std::vector<std::string>& hosts) {
  Cert c(X509_new());
  X509_set_version(c.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -300);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(c.get(), key);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("faultline"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer : c.get();
  X509_set_issuer_name(c.get(), X509_get_subject_name(signer));
  AddExt(c.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer) AddExt(c.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (ca) {
    AddExt(c.get(), signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    AddExt(c.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(c.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(c.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    AddExt(c.get(), signer, NID_ext_key_usage, eku);
    if (!hosts.empty()) AddExt(c.get(), signer, NID_subject_alt_name, SubjectAltNames(hosts));
  }
  if (X509_sign(c.get(), issuer_key ? issuer_key : key, EVP_sha256()) == 0) Fail("signing " + cn);
  return c;
}

void Write(const std::filesystem::path& path, bool secret, const std::function<int(BIO*)>& emit) {
  // Keys are created 0600 from the start, never widened afterwards.
  mode_t old = umask(secret ? 077 : 022);
  std::unique_ptr<BIO, Free> bio(BIO_new_file(path.c_str(), "w"));
  umask(old);
  if (!bio || emit(bio.get()) != 1) Fail("writing " + path.string());
}

}  // namespace

std::vector<std::filesystem::path> InitCerts(const CertsOptions& o) {
  std::filesystem::create_directories(o.dir);
  std::vector<std::string> names = {"ca", "controller", "cli"};
  for (const auto& a : o.agents) {
    // The name becomes a file name next to the others.
    if (a.empty() || a.find('/') != std::string::npos || a.front() == '.') {
      throw std::invalid_argument("--agent \"" + a + "\": want a host name or IP");
    }
    if (std::find(names.begin(), names.end(), a) != names.end()) {
      throw std::invalid_argument("--agent " + a + ": " +
                                  (a == "ca" || a == "controller" || a == "cli"
                                       ? "clashes with the " + a + " certificate's files"
                                       : "given twice"));
    }
    names.push_back(a);
  }
  for (const auto& n : names) {
    for (const char* ext : {".crt", ".key"}) {
      auto p = o.dir / (n + ext);
      if (std::filesystem::exists(p) && !o.force) {
        throw std::runtime_error(p.string() + " exists (use --force to replace the whole set)");
      }
    }
  }
  std::vector<std::filesystem::path> written;
  auto save = [&](const std::string& n, EVP_PKEY* key, X509* cert) {
    Write(o.dir / (n + ".key"), true, [&](BIO* b) {
      return PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
    });
    Write(o.dir / (n + ".crt"), false, [&](BIO* b) { return PEM_write_bio_X509(b, cert); });
    written.push_back(o.dir / (n + ".crt"));
    written.push_back(o.dir / (n + ".key"));
  };
  Key ca_key = NewKey();
  Cert ca = Issue(ca_key.get(), "faultline CA", nullptr, nullptr, o.days, true, "", {});
  save("ca", ca_key.get(), ca.get());
  Key ctl_key = NewKey();
  // The controller serves the CLI and is a client of agents.
  save("controller", ctl_key.get(),
       Issue(ctl_key.get(), kControllerName, ca.get(), ca_key.get(), o.days, false,
             "serverAuth,clientAuth", o.controller_hosts)
           .get());
  Key cli_key = NewKey();
  save("cli", cli_key.get(),
       Issue(cli_key.get(), kCliName, ca.get(), ca_key.get(), o.days, false, "clientAuth", {})
           .get());
  for (const auto& agent : o.agents) {
    Key k = NewKey();
    std::vector<std::string> hosts = o.agent_hosts;
    if (agent != "agent") hosts.insert(hosts.begin(), agent);
    // One name every agent answers to, for clients that dial agents by an address the
    // certificate cannot list (nodes of a cluster sharing one certificate): --tls-server-name.
    hosts.push_back(kAgentServerName);
    // Server for the controller and CLI, client when registering with the controller.
    save(agent, k.get(),
         Issue(k.get(), kAgentNamePrefix + agent, ca.get(), ca_key.get(), o.days, false,
               "serverAuth,clientAuth", hosts)
             .get());
  }
  return written;
}

}  // namespace faultline::transport
