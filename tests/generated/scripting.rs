//! Generated scripting commands: EVAL (numkeys counted for you), scripts, functions.

use kermes::prelude::*;

crate::group_tests! {
    async fn eval_counts_keys_and_passes_args(t) {
        let c = &t.c;
        let script = "return {KEYS[1], KEYS[2], ARGV[1], #KEYS}";
        let r: (String, String, String, i64) = c.eval(script, ["{e}k1", "{e}k2"], "a1").to().await.unwrap();
        assert_eq!(r, ("{e}k1".into(), "{e}k2".into(), "a1".into(), 2));
        let none: i64 = c.eval("return #KEYS", (), ()).to().await.unwrap();
        assert_eq!(none, 0);
        let sha: String = c.script_load("return ARGV[1] + 1").to().await.unwrap();
        assert_eq!(c.script_exists([sha.as_str(), "0000"]).await.unwrap(), [1, 0]);
        let n: i64 = c.evalsha(&sha, (), 41).to().await.unwrap();
        assert_eq!(n, 42);
        c.script_flush().await.unwrap();
        let err = c.evalsha::<Value>(&sha, (), ()).await.unwrap_err();
        assert_eq!(err.server_error().unwrap().code(), "NOSCRIPT");
    }

    async fn functions_load_and_fcall(t) {
        let c = &t.c;
        let code = "#!lua name=kermeslib\nredis.register_function('double', function(keys, args) return args[1] * 2 end)";
        let lib: String = c.function_load_with(code, FunctionLoadOptions::new().replace()).to().await.unwrap();
        assert_eq!(lib, "kermeslib");
        let doubled: i64 = c.fcall("double", (), 21).to().await.unwrap();
        assert_eq!(doubled, 42);
        c.function_delete("kermeslib").await.unwrap();
        assert!(c.fcall::<Value>("double", (), 1).await.is_err());
    }
}
