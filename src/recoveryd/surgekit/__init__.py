"""Tools for rehearsing a health-code surge: a demo service, a load generator and the
surge benchmark that runs both against nginx with and without the governor."""
