"""The project's exceptions: one small tree, each with a message meant for a person.

    HharError
    ├── ConfigError            a setting or option is invalid, or a required tool is missing
    │   └── SqlError           a SQL statement or named query cannot run (text, name, stream)
    ├── InputDataError         a source file or folder cannot be read or holds no data
    ├── BrokerError            the Kafka broker cannot be started, reached or used
    └── QueryFailedError       a Spark query failed or cannot start

`hhar` prints ``error: <message>`` on one line and exits non-zero for any of them.
"""


class HharError(Exception):
    """Base of every error hhar-stream reports to its user."""

    exit_code = 1


class ConfigError(HharError):
    """A setting, option or required tool is wrong or missing."""

    exit_code = 2


class SqlError(ConfigError):
    """A SQL statement or a named query cannot run: its text, its name, or what it asks of a
    stream; the message says where (file, line, position)."""


class InputDataError(HharError):
    """A source file or folder cannot be read, or holds no data."""


class BrokerError(HharError):
    """The Kafka broker cannot be started, reached or used."""


class QueryFailedError(HharError):
    """A Spark query failed or cannot start."""
