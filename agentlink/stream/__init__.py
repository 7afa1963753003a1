"""The stream: Redis key names, the Lua scripts and the operations on the report stream
that the API, the consumers and the operator tools share."""
