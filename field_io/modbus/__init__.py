"""The greenwave Modbus TCP profile: register map (data), codec, central backend, field server."""
