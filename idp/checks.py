"""System checks for dangerous configuration; ids are stable (idp.Wnnn / idp.Ennn)."""
