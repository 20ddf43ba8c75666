# Managed (supervised) processes: the config (managed_config), starting a child into a netns
# (spawn), readiness probes (readiness), the supervisor with its restart policy and re-adoption
# (managed), and the excerpt of a dead process's output a liveness finding quotes
# (output_excerpt).
add_library(faultline_faults_managed STATIC ${CMAKE_CURRENT_LIST_DIR}/managed.cc
  ${CMAKE_CURRENT_LIST_DIR}/managed_config.cc ${CMAKE_CURRENT_LIST_DIR}/spawn.cc
  ${CMAKE_CURRENT_LIST_DIR}/readiness.cc ${CMAKE_CURRENT_LIST_DIR}/output_excerpt.cc)
target_link_libraries(faultline_faults_managed PUBLIC faultline_faults_process faultline_faults_core
                      faultline_faults_syscall
                      PRIVATE nlohmann_json::nlohmann_json)
faultline_warnings(faultline_faults_managed)
