pub fn build_user() {}
