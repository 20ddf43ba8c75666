# faultline run / gate / runs / schedule: experiments through the embedded runner or a controller.
add_library(faultline_cli_controller STATIC ${CMAKE_CURRENT_SOURCE_DIR}/run_command.cc
            ${CMAKE_CURRENT_SOURCE_DIR}/lab_requirements.cc ${CMAKE_CURRENT_SOURCE_DIR}/reproduce_command.cc)
target_link_libraries(faultline_cli_controller PUBLIC
  faultline_cli faultline_controller faultline_experiments faultline_proto_controller faultline_lab)
faultline_warnings(faultline_cli_controller)
