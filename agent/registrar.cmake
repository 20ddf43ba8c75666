# The agent's registration with a controller (heartbeats, labels, capabilities).
add_library(faultline_agent_registrar STATIC ${CMAKE_CURRENT_LIST_DIR}/registrar.cc)
target_include_directories(faultline_agent_registrar PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(faultline_agent_registrar PUBLIC faultline_proto_controller
                      faultline_transport faultline_faults_core)
faultline_warnings(faultline_agent_registrar)
