# The one list of firmware_core's sources, for the host build and the ARM cross build
# (both go through firmware_core/CMakeLists.txt). Paths are relative to firmware_core/.
set(FW_CORE_SOURCES
  src/fw_codec.c
  src/fw_command.c
  src/fw_device.c
  src/fw_device_flash.c
  src/fw_display.c
  src/fw_font.c
  src/fw_input.c
  src/fw_names.c
  src/fw_outbox.c
  src/fw_screens.c
  src/fw_store.c
  src/fw_util.c
)
# The trace codec, recorder and replayer (fw_trace): portable too, not part of the device.
set(FW_TRACE_SOURCES
  trace/src/fw_trace.c
  trace/src/fw_trace_recorder.c
  trace/src/fw_replay.c
)
