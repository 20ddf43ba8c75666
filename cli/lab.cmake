# `faultline lab ...` (included by cli/CMakeLists.txt).
add_library(faultline_cli_lab STATIC ${CMAKE_CURRENT_LIST_DIR}/lab_command.cc
            ${CMAKE_CURRENT_LIST_DIR}/etcd_command.cc)
target_link_libraries(faultline_cli_lab PUBLIC faultline_lab faultline_cli faultline_verify
                      faultline_verify_agents
                      faultline_proto_agent faultline_proto_controller CLI11::CLI11
                      PRIVATE nlohmann_json::nlohmann_json)
target_include_directories(faultline_cli_lab PUBLIC ${PROJECT_SOURCE_DIR})
faultline_warnings(faultline_cli_lab)
