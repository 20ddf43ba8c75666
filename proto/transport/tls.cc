#include "proto/transport/tls.h"

#include <stdexcept>

#include "faults/core/host.h"
#include "proto/transport/address.h"

namespace faultline::transport {

std::string TlsFiles::FlagList() const { return cert_flag + ", " + key_flag + " and " + ca_flag; }

void TlsFiles::RequireAllOrNone() const {
  if (!any() || complete()) return;
  std::string missing;
  for (const auto& [value, flag] :
       {std::pair{&ca, &ca_flag}, {&cert, &cert_flag}, {&key, &key_flag}}) {
    if (value->empty()) missing += (missing.empty() ? "" : ", ") + *flag;
  }
  throw std::invalid_argument("mTLS needs all of " + FlagList() + " (missing " + missing + ")");
}

std::string ReadPem(const std::string& path, const std::string& flag) {
  try {
    return faults::ReadWholeFile(path);
  } catch (const std::exception&) {
    throw std::invalid_argument(flag + ": cannot read \"" + path + "\"");
  }
}

std::shared_ptr<grpc::ChannelCredentials> SslChannelCredentials(const TlsFiles& files) {
  grpc::SslCredentialsOptions ssl;
  if (!files.ca.empty()) ssl.pem_root_certs = ReadPem(files.ca, files.ca_flag);
  if (!files.cert.empty() || !files.key.empty()) {
    if (files.cert.empty() || files.key.empty()) {
      throw std::invalid_argument("a client certificate needs both " + files.cert_flag + " and " +
                                  files.key_flag);
    }
    ssl.pem_cert_chain = ReadPem(files.cert, files.cert_flag);
    ssl.pem_private_key = ReadPem(files.key, files.key_flag);
  }
  return grpc::SslCredentials(ssl);
}

std::shared_ptr<grpc::Channel> Dial(const std::string& address, const TlsFiles& files) {
  std::string target = DialTarget(address);
  if (target.starts_with("unix:")) {
    return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  }
  if (!files.ca.empty()) {
    grpc::ChannelArguments args;
    if (!files.server_name.empty()) args.SetSslTargetNameOverride(files.server_name);
    return grpc::CreateCustomChannel(target, SslChannelCredentials(files), args);
  }
  if (!IsLoopback(target)) {
    throw std::invalid_argument(address + " is off loopback: give " + files.ca_flag + ", " +
                                files.cert_flag + " and " + files.key_flag +
                                " (plaintext is allowed only on loopback)");
  }
  return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
}

std::shared_ptr<grpc::ServerCredentials> MtlsServerCredentials(const TlsFiles& files) {
  if (!files.complete()) {
    throw std::invalid_argument("mTLS needs all of " + files.FlagList());
  }
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = ReadPem(files.ca, files.ca_flag);
  ssl.pem_key_cert_pairs.push_back(
      {ReadPem(files.key, files.key_flag), ReadPem(files.cert, files.cert_flag)});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace faultline::transport
