# encode_example.cmake - cmake -P script: encodes one text-format config to binary config.pb.
#   cmake -DPROTOC=... -DPROTO_DIR=... -DIN=x.txtpb -DOUT=x.pb -P encode_example.cmake
# Writes to a temporary file and renames it, so a failed encoding leaves no half file behind.
execute_process(
  COMMAND ${PROTOC} --encode=phalanx.Config -I${PROTO_DIR} ${PROTO_DIR}/config.proto
  INPUT_FILE ${IN}
  OUTPUT_FILE ${OUT}.tmp
  ERROR_VARIABLE err
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE ${OUT}.tmp)
  message(FATAL_ERROR "cannot encode ${IN}:\n${err}")
endif()
file(RENAME ${OUT}.tmp ${OUT})
