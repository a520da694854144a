"""The offline stand-ins for the official images, built from Debian's packages."""
