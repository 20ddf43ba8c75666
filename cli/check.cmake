# `faultline check etcd|history` (etcd verification area).
add_library(faultline_cli_check STATIC ${CMAKE_CURRENT_LIST_DIR}/check_command.cc)
target_include_directories(faultline_cli_check PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(faultline_cli_check PUBLIC faultline_cli_exit faultline_verify CLI11::CLI11)
faultline_warnings(faultline_cli_check)
