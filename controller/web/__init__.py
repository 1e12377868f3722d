"""The hall server's HTTP doors."""
