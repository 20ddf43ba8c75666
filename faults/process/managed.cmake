# Managed (supervised) processes: spawn into a netns, restart policy, readiness, re-adoption.
add_library(faultline_faults_managed STATIC ${CMAKE_CURRENT_LIST_DIR}/managed.cc
  ${CMAKE_CURRENT_LIST_DIR}/output_excerpt.cc)
target_link_libraries(faultline_faults_managed PUBLIC faultline_faults_process faultline_faults_core
                      faultline_faults_syscall
                      PRIVATE nlohmann_json::nlohmann_json)
faultline_warnings(faultline_faults_managed)
