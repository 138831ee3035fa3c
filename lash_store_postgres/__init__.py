"""PostgreSQL backend for lash-store (psycopg 3). Not yet implemented."""
