"""The offline stand-ins for the official images, built from Debian's packages."""

# The servers offline_image builds (its SERVERS), named here so that the command line can
# offer them without importing the builder.
STAND_INS = ("redis-7.0", "redis-8.0", "valkey-8.1")
