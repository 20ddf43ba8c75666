# `faultline lab ...` (included by cli/CMakeLists.txt).
add_library(faultline_cli_lab STATIC ${CMAKE_CURRENT_LIST_DIR}/lab_command.cc)
target_link_libraries(faultline_cli_lab PUBLIC faultline_lab faultline_cli faultline_verify
                      faultline_verify_agents
                      faultline_proto_agent faultline_proto_controller CLI11::CLI11
                      PRIVATE nlohmann_json::nlohmann_json)
target_include_directories(faultline_cli_lab PUBLIC ${PROJECT_SOURCE_DIR})
faultline_warnings(faultline_cli_lab)
# The lab command is registered from commands.cc (AddAreaCommands); the two static libraries
# use each other, which CMake resolves by repeating them on the link line.
target_link_libraries(faultline_cli PUBLIC faultline_cli_lab)
