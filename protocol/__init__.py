"""The live and REST contract: message types, validation, codecs, error codes."""
