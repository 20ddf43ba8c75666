// The controller refuses a bad fault spec when the experiment is submitted, naming the field,
// and stores nothing: a scheduled experiment is not found bad by an agent in the middle of a run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "controller/daemon/service.h"
#include "controller/state/file_store.h"

namespace faultline::controller {
namespace {

using ::testing::HasSubstr;

class Submit : public ::testing::Test {
 protected:
  Submit()
      : dir_(std::filesystem::temp_directory_path() /
             ("faultline-submit-" + std::to_string(::getpid()))),
        store_(dir_),
        leadership_({"test-" + std::to_string(::getpid()), "unix:///nowhere"}),
        service_(store_, leadership_, {}) {
    service_.Start();
  }
  ~Submit() override {
    service_.Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // Documents of `kind` in the store (List's default argument is StateStore's).
  size_t Stored(const std::string& kind) {
    StateStore& s = store_;
    return s.List(kind).size();
  }
  grpc::Status Send(const std::string& yaml, v1::SubmitExperimentResponse* resp) {
    v1::SubmitExperimentRequest req;
    req.set_yaml(yaml);
    req.set_file_name("exp.yaml");
    grpc::ServerContext ctx;
    return service_.SubmitExperiment(&ctx, &req, resp);
  }

  std::filesystem::path dir_;
  FileStore store_;
  SoleReplica leadership_;
  ControllerService service_;
};

constexpr const char* kScheduled = R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: nightly-fsync}
spec:
  schedule: {cron: "@every 10m"}
  steps:
    - fault: {io: {action: latency, mount: /var/lib/etcd, methods: [fsync]}}
      target: {role: leader}
      duration: 30s
)";

TEST_F(Submit, BadFaultSpecIsRefusedNamingTheField) {
  v1::SubmitExperimentResponse resp;
  auto st = Send(kScheduled, &resp);
  ASSERT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // The io family's own rule, with file, line and field path.
  EXPECT_THAT(st.error_message(), HasSubstr("exp.yaml:7:"));
  EXPECT_THAT(st.error_message(), HasSubstr("spec.steps[0].fault.io.delay: required"));
  EXPECT_EQ(Stored("experiments"), 0u);
  EXPECT_EQ(Stored("schedules"), 0u);

  std::string good = kScheduled;
  good.replace(good.find("methods: [fsync]"), 16, "methods: [fsync], delay: 100ms");
  st = Send(good, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(Stored("experiments"), 1u);
}

TEST_F(Submit, ChaosMesh1xManifestIsAcceptedWithANote) {
  v1::SubmitExperimentResponse resp;
  auto st = Send(R"(apiVersion: chaos-mesh.org/v1alpha1
kind: IoChaos
metadata: {name: io-delay-example}
spec:
  action: latency
  mode: one
  selector: {labelSelectors: {app: etcd}}
  volumePath: /var/run/etcd
  path: '/var/run/etcd/**/*'
  delay: '100ms'
  percent: 50
  duration: '400s'
  scheduler: {cron: '@every 10m'}
)",
                 &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.experiment_names_size(), 1);
  ASSERT_GE(resp.notes_size(), 1);
  EXPECT_THAT(resp.notes(0), HasSubstr("IoChaos"));
  EXPECT_EQ(Stored("schedules"), 1u);
}

}  // namespace
}  // namespace faultline::controller
